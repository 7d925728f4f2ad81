"""Index benchmark: sentsim's FAISS backends vs raw FAISS with the same parameters, in one run.

    python benchmarks/bench_index.py                      # 100k random vectors + real STS-B/CLINC150 embeddings
    python benchmarks/bench_index.py --sizes 100000 1000000   # add 1M (a machine with RAM and time to spare)
    python benchmarks/bench_index.py --sizes --backends flat --nprobe-sweep   # how IVF's nprobe trades recall for speed
    python benchmarks/bench_index.py --precision-only     # int8 / binary / truncate_dim indexes on the real embeddings

For each backend: build time, memory per vector (serialized index), batch-search QPS (1,000
queries, k=10) and recall@10 against exact search, for raw FAISS and for sentsim's backend, and
sentsim's overhead on batch search. On the real embeddings, also the whole DocumentIndex path
(hits with text and metadata from SQLite). ``--nprobe-sweep`` adds recall@10 and QPS of IVF on
the real embeddings for nprobe from 1 to nlist/4: the evidence behind the IVF default.

Precisions (always on the real embeddings; alone with ``--precision-only``): a flat DocumentIndex
of each precision / truncate_dim, rescored from SQLite, beside raw FAISS on the same codes
without rescoring (IndexFlatIP, IndexScalarQuantizer 8-bit, IndexBinaryFlat): index bytes
(serialized, and the process memory its loading takes), batch-search QPS, recall@10 against
exact float search, and nDCG@10 of STS-B paraphrase retrieval (the evaluator's index path,
:func:`sentsim.evaluation.retrieval.index_rankings`, over the same embeddings).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine, stsb_sentences  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.data import load_clinc150, load_stsb, sts_paraphrase_retrieval  # noqa: E402
from sentsim.evaluation.indexed import search_rankings  # noqa: E402
from sentsim.evaluation.ranking import retrieval_metrics  # noqa: E402
from sentsim.search import DocumentIndex  # noqa: E402
from sentsim.search.backends import VectorBackend, resolve_factory  # noqa: E402

K, QUERIES = 10, 1000
# (precision, truncate_dim, rescore_factor) of the precision table; the first is the float baseline.
LAYOUTS = [
    ("float32", None, 4),
    ("int8", None, 4),
    ("binary", None, 4),
    ("binary", None, 10),
    ("float32", 256, 4),
    ("float32", 128, 4),
    ("int8", 256, 4),
    ("binary", 256, 10),
]


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
    parser.add_argument(
        "--precision-only", action="store_true", help="only the precision table (real embeddings; no --sizes)"
    )
    parser.add_argument(
        "--embeddings", type=Path, help="an .npz of the real embeddings: read if it exists, else written (reruns)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.precision_only:
        args.sizes = []
    print(
        f"# index benchmark, k={K}, {QUERIES} queries a batch; {machine()}; faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads"
    )
    if not args.precision_only:
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
    if args.embeddings is not None and args.embeddings.exists():
        saved = np.load(args.embeddings)
        corpus, queries = saved["corpus"], saved["queries"]
        if len(corpus) != len(sentences):
            raise SystemExit(f"{args.embeddings} holds {len(corpus)} embeddings for {len(sentences)} sentences")
    else:
        corpus = encoder.encode(sentences, batch_size=128, show_progress=False)
        queries = encoder.encode(held_out, batch_size=128, show_progress=False)
        if args.embeddings is not None:
            np.savez(args.embeddings, corpus=corpus, queries=queries)
    print(
        f"# real: {len(sentences)} distinct STS-B + CLINC150 train sentences, {len(held_out)} CLINC150 test queries, encoded in {time.perf_counter() - start:.0f} s"
    )
    if args.precision_only:
        return _precisions(encoder, sentences, corpus, queries, args.data_dir)
    rows = _compare(f"real {len(sentences) // 1000}k", corpus, queries, args.backends)
    rows += _precisions(encoder, sentences, corpus, queries, args.data_dir)
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


def _precisions(encoder, sentences: list[str], corpus: np.ndarray, queries: np.ndarray, data_dir: Path) -> list[dict]:
    """Each layout of :data:`LAYOUTS` as a flat DocumentIndex (rescored) beside raw FAISS on its codes."""
    n, dim = corpus.shape
    exact = faiss.IndexFlatIP(dim)
    exact.add(_normalized(corpus))
    _, truth = exact.search(_normalized(queries), K)
    stsb = {split: load_stsb(split, data_dir=data_dir) for split in ("train", "dev", "test")}
    retrieval = sts_paraphrase_retrieval(stsb["test"], [stsb["train"], stsb["dev"]])
    row_of = {text: row for row, text in enumerate(sentences)}
    texts = list(retrieval.queries.values()) + list(retrieval.corpus.values())
    missing = [text for text in dict.fromkeys(texts) if text not in row_of]
    extra = encoder.encode(missing, batch_size=128, show_progress=False) if missing else np.zeros((0, dim))
    vector_of = {text: vector for text, vector in zip(missing, extra, strict=True)}

    def embedded(some: list[str]) -> np.ndarray:
        return np.stack([corpus[row_of[t]] if t in row_of else vector_of[t] for t in some])

    sts_corpus = embedded(list(retrieval.corpus.values()))
    print(
        f"# precisions: flat DocumentIndex (hits with text and metadata, rescored from SQLite) vs raw FAISS on the "
        f"same codes (no rescoring), {n} real vectors; nDCG@10: STS-B paraphrase retrieval ({len(retrieval.queries)} "
        f"queries, {len(retrieval.corpus)} docs)"
    )
    print(
        f"{'precision':<10} {'trunc':>5} {'rescore':>7} {'B/vector':>9} {'of float':>8} {'load MB':>8} {'QPS':>8} "
        f"{'recall@10':>9} {'nDCG@10':>8}   {'raw QPS':>8} {'raw recall':>10}"
    )
    rows, float_bytes = [], None
    for precision, truncate_dim, factor in LAYOUTS:
        options = {"precision": precision, "truncate_dim": truncate_dim, "rescore_factor": factor, "backend": "flat"}
        with tempfile.TemporaryDirectory() as folder:
            index = DocumentIndex.create(Path(folder) / "index", encoder, **options)
            index.add(sentences, ids=[str(i) for i in range(n)], embeddings=corpus)
            index_file = Path(folder) / "index" / "index.faiss"
            size = index_file.stat().st_size
            loaded_mb = _load_memory(index_file, precision)
            raw, codes = _raw_codes(precision, truncate_dim, corpus)
            (qps, hits), (raw_qps, raw_ids) = _qps_side_by_side(
                lambda index=index: index.search_vectors(queries, K),
                lambda raw=raw, codes=codes: raw.search(codes(queries), K)[1],
            )
            index.close()
        found = [[int(hit.id) for hit in row] for row in hits]
        float_bytes = float_bytes or size
        ndcg = _ndcg_through_index(encoder, retrieval, sts_corpus, options)
        row = {
            "data": f"real {n // 1000}k",
            "backend": "precision",
            "precision": precision,
            "truncate_dim": truncate_dim,
            "rescore_factor": factor,
            "bytes_per_vector": size / n,
            "share_of_float": size / float_bytes,
            "load_mb": loaded_mb,
            "qps": qps,
            "recall@10": _recall(truth, found),
            "ndcg@10": ndcg,
            "raw_qps": raw_qps,
            "raw_recall@10": _recall(truth, raw_ids),
        }
        rows.append(row)
        load = f"{loaded_mb:>8.1f}" if loaded_mb is not None else f"{'-':>8}"
        print(
            f"{precision:<10} {truncate_dim or '-':>5} {factor if precision != 'float32' or truncate_dim else '-':>7} "
            f"{row['bytes_per_vector']:>9.1f} {row['share_of_float']:>8.1%} {load} {qps:>8.0f} {row['recall@10']:>9.4f} "
            f"{ndcg:>8.2f}   {raw_qps:>8.0f} {row['raw_recall@10']:>10.4f}"
        )
    return rows


def _ndcg_through_index(encoder, retrieval, corpus: np.ndarray, options: dict) -> float:
    """nDCG@10 of ``retrieval`` searched through a DocumentIndex of its corpus (embeddings ``corpus``) built with ``options``."""
    with tempfile.TemporaryDirectory() as folder:
        with DocumentIndex.create(Path(folder) / "index", encoder, **options) as index:
            index.add(list(retrieval.corpus.values()), ids=list(retrieval.corpus), embeddings=corpus)
            rankings = search_rankings(index, retrieval, list(retrieval.queries), 100, {})
    return retrieval_metrics(rankings, [retrieval.relevant[q] for q in retrieval.queries])["ndcg@10"]


def _raw_codes(precision: str, truncate_dim: int | None, corpus: np.ndarray):
    """Raw FAISS on the codes of a layout (no ids, no rescoring), and how it turns queries into its input."""
    dim = truncate_dim or corpus.shape[1]

    def head(x: np.ndarray) -> np.ndarray:
        return _normalized(x[:, :dim])

    if precision == "binary":
        raw = faiss.IndexBinaryFlat(dim)
        raw.add(np.packbits(head(corpus) > 0, axis=1))
        return raw, lambda x: np.packbits(head(x) > 0, axis=1)
    if precision == "int8":
        raw = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        raw.train(head(corpus))
    else:
        raw = faiss.IndexFlatIP(dim)
    raw.add(head(corpus))
    return raw, head


def _load_memory(path: Path, precision: str) -> float | None:
    """MB a fresh process grows by reading the saved index (codes, ids and FAISS's id maps), or None off Linux."""
    reader = "read_index_binary" if precision == "binary" else "read_index"
    script = (
        "import sys, faiss\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1])\n"
        f"before = rss(); index = faiss.{reader}(sys.argv[1]); print(rss() - before)"
    )
    try:
        pages = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
        return int(pages.stdout) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, subprocess.CalledProcessError):
        return None


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
