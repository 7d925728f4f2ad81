"""Index benchmark: sentsim's FAISS backends vs raw FAISS with the same parameters, in one run.

    python benchmarks/bench_index.py                      # 100k random vectors + real STS-B/CLINC150 embeddings
    python benchmarks/bench_index.py --sizes 100000 1000000   # add 1M (a machine with RAM and time to spare)
    python benchmarks/bench_index.py --sizes --backends flat --nprobe-sweep   # how IVF's nprobe trades recall for speed

For each backend: build time, memory per vector (serialized index), batch-search QPS (1,000
queries, k=10) and recall@10 against exact search, for raw FAISS and for sentsim's backend, and
sentsim's overhead on batch search. On the real embeddings, also the whole DocumentIndex path
(hits with text and metadata from SQLite). ``--nprobe-sweep`` adds recall@10 and QPS of IVF on
the real embeddings for nprobe from 1 to nlist/4: the evidence behind the IVF default.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine, stsb_sentences  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.data import load_clinc150  # noqa: E402
from sentsim.search import DocumentIndex  # noqa: E402
from sentsim.search.backends import VectorBackend, resolve_factory  # noqa: E402

K, QUERIES = 10, 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--backends", nargs="+", default=["flat", "ivf", "hnsw", "ivfpq"])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--real-limit", type=int, default=None, help="use at most this many real sentences")
    parser.add_argument("--no-real", action="store_true", help="random vectors only (no real embeddings)")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--nprobe-sweep", action="store_true", help="IVF recall and QPS by nprobe on the real embeddings"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(
        f"# index benchmark, k={K}, {QUERIES} queries a batch; {machine()}; faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads"
    )
    print(
        f"{'data':<16} {'backend':<18} {'build s':>8} {'B/vector':>9} {'QPS':>9} {'recall@10':>9}   {'raw build s':>11} {'raw QPS':>9} {'raw recall':>10} {'overhead':>8}"
    )
    rows = []
    rng = np.random.default_rng(0)
    for n in args.sizes:
        vectors = _normalized(rng.normal(size=(n, args.dim)))
        queries = _normalized(rng.normal(size=(QUERIES, args.dim)))
        rows += _compare(f"random {n // 1000}k", vectors, queries, args.backends)

    if not args.no_real:
        rows += _real(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")


def _real(args: argparse.Namespace) -> list[dict]:
    """Every backend on embeddings of real sentences, then the whole DocumentIndex path."""
    encoder = SentenceEncoder.from_pretrained(args.model)
    sentences = list(
        dict.fromkeys(stsb_sentences(args.data_dir) + load_clinc150("train", data_dir=args.data_dir).texts)
    )[: args.real_limit]
    held_out = load_clinc150("test", data_dir=args.data_dir).texts[:QUERIES]
    start = time.perf_counter()
    corpus = encoder.encode(sentences, batch_size=128, show_progress=False)
    queries = encoder.encode(held_out, batch_size=128, show_progress=False)
    print(
        f"# real: {len(sentences)} distinct STS-B + CLINC150 train sentences, {len(held_out)} CLINC150 test queries, encoded in {time.perf_counter() - start:.0f} s"
    )
    rows = _compare(f"real {len(sentences) // 1000}k", corpus, queries, args.backends)
    if args.nprobe_sweep:
        rows += _nprobe_sweep(f"real {len(sentences) // 1000}k", corpus, queries)
    return rows + [_document_index(encoder, sentences, corpus, queries)]


def _nprobe_sweep(name: str, vectors: np.ndarray, queries: np.ndarray) -> list[dict]:
    """Recall@10 and QPS of sentsim's IVF backend at nprobe = 1, 2, 4, ... nlist/4 (and its default)."""
    n, dim = vectors.shape
    exact = faiss.IndexFlatIP(dim)
    exact.add(_normalized(vectors))
    _, truth = exact.search(_normalized(queries), K)
    backend = VectorBackend(resolve_factory("ivf", dim, n), dim, "cosine")
    backend.add(vectors, np.arange(n))
    ivf = faiss.try_extract_index_ivf(backend.inner)
    default = ivf.nprobe
    probes = sorted({p for p in (2**i for i in range(16)) if p <= ivf.nlist // 4} | {default})
    print(f"# nprobe sweep, {name}, {backend.factory} (default nprobe {default})")
    rows = []
    for nprobe in probes:  # the per-call knob users have: search(..., nprobe=N)
        qps, ids = _qps(lambda nprobe=nprobe: backend.search(queries, K, nprobe=nprobe)[1])
        rows.append(
            {
                "data": name,
                "backend": "ivf nprobe",
                "factory": backend.factory,
                "nprobe": nprobe,
                "nprobe_share": nprobe / ivf.nlist,
                "qps": qps,
                "recall@10": _recall(truth, ids),
            }
        )
        print(
            f"  nprobe {nprobe:>5} ({nprobe / ivf.nlist:6.1%} of lists)  recall@10 {rows[-1]['recall@10']:.3f}  {qps:>9.0f} QPS"
        )
    return rows


def _compare(name: str, vectors: np.ndarray, queries: np.ndarray, backends: list[str]) -> list[dict]:
    n, dim = vectors.shape
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    _, truth = exact.search(queries, K)
    rows = []
    for backend in backends:
        factory = resolve_factory(backend, dim, n)
        ours = VectorBackend(factory, dim, "cosine")
        start = time.perf_counter()
        ours.add(vectors, np.arange(n))
        ours_build = time.perf_counter() - start

        raw = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        _same_parameters(raw, ours)
        start = time.perf_counter()
        if not raw.is_trained:
            raw.train(vectors if n <= 100_000 else vectors[np.random.default_rng(0).choice(n, 100_000, replace=False)])
        raw.add(vectors)
        raw_build = time.perf_counter() - start
        (ours_qps, ours_ids), (raw_qps, raw_ids) = _qps_side_by_side(
            lambda ours=ours: ours.search(queries, K)[1], lambda raw=raw: raw.search(queries, K)[1]
        )
        row = {
            "data": name,
            "backend": backend,
            "factory": factory,
            "n": n,
            "build_s": ours_build,
            "bytes_per_vector": faiss.serialize_index(ours.index).size / n,
            "qps": ours_qps,
            "recall@10": _recall(truth, ours_ids),
            "raw_build_s": raw_build,
            "raw_qps": raw_qps,
            "raw_recall@10": _recall(truth, raw_ids),
            "overhead": raw_qps / ours_qps - 1,
        }
        rows.append(row)
        print(
            f"{name:<16} {factory:<18} {row['build_s']:>8.1f} {row['bytes_per_vector']:>9.0f} {row['qps']:>9.0f} {row['recall@10']:>9.3f}   "
            f"{row['raw_build_s']:>11.1f} {row['raw_qps']:>9.0f} {row['raw_recall@10']:>10.3f} {row['overhead']:>7.1%}"
        )
    return rows


def _document_index(encoder, sentences: list[str], corpus: np.ndarray, queries: np.ndarray) -> dict:
    """The whole path: DocumentIndex.search_vectors (FAISS + hits from SQLite) vs raw exact FAISS."""
    with tempfile.TemporaryDirectory() as folder:
        index = DocumentIndex.create(Path(folder) / "index", encoder, backend="flat")
        start = time.perf_counter()
        index.add(sentences, ids=[str(i) for i in range(len(sentences))], show_progress=False)
        build = time.perf_counter() - start
        raw = faiss.IndexFlatIP(corpus.shape[1])
        raw.add(_normalized(corpus))
        (qps, _), (raw_qps, _) = _qps_side_by_side(
            lambda: index.search_vectors(queries, K), lambda: raw.search(_normalized(queries), K)
        )
        index.close()
    print(
        f"# DocumentIndex (flat, hits with text and metadata): add {build:.1f} s (encoding included), {qps:.0f} QPS vs raw FAISS {raw_qps:.0f} QPS ({raw_qps / qps - 1:.1%} overhead)"
    )
    return {
        "data": "real",
        "backend": "DocumentIndex flat",
        "build_s_with_encoding": build,
        "qps": qps,
        "raw_qps": raw_qps,
        "overhead": raw_qps / qps - 1,
    }


def _same_parameters(raw: faiss.Index, ours: VectorBackend) -> None:
    inner = ours.inner
    if isinstance(inner, faiss.IndexHNSW):
        raw.hnsw.efConstruction, raw.hnsw.efSearch = inner.hnsw.efConstruction, inner.hnsw.efSearch
    ours_ivf, raw_ivf = faiss.try_extract_index_ivf(inner), faiss.try_extract_index_ivf(raw)
    if ours_ivf is not None:
        raw_ivf.nprobe = ours_ivf.nprobe


def _qps_side_by_side(*searches, repeats: int = 5) -> list[tuple[float, np.ndarray]]:
    """Best-of-``repeats`` QPS and ids of each search, timed in alternation so drifts of a shared
    machine hit them alike."""
    best, ids = [float("inf")] * len(searches), [None] * len(searches)
    for _ in range(repeats):
        for i, search in enumerate(searches):
            start = time.perf_counter()
            ids[i] = search()
            best[i] = min(best[i], time.perf_counter() - start)
    return [(QUERIES / seconds, found) for seconds, found in zip(best, ids, strict=True)]


def _qps(search, repeats: int = 3) -> tuple[float, np.ndarray]:
    return _qps_side_by_side(search, repeats=repeats)[0]


def _recall(truth: np.ndarray, found) -> float:
    found = np.asarray(found)
    return float(np.mean([len(set(t) & set(f)) / K for t, f in zip(truth, found, strict=True)]))


def _normalized(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


if __name__ == "__main__":
    main()
