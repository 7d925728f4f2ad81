"""Store benchmark: DocumentIndex on Milvus Lite vs on the FAISS store, same corpus, same embeddings.

    python benchmarks/scale_store.py                       # STS-B, all-MiniLM-L6-v2, flat and hnsw
    python benchmarks/scale_store.py --limit 5000 --backends flat --json out.json

The corpus is every distinct STS-B sentence but the last ``--queries``, which are the queries.
The embeddings are computed once and both stores are handed the same vectors (the encoder's
``encode`` looks them up), so build time is the store's: chunk planning, the embedding cache
lookup, and writing documents, metadata and vectors. Milvus is flushed after the build, so its
HNSW index is built before the searches (Milvus does that on its own schedule). Per store and
backend: build time, batch QPS (all queries in one ``search_vectors`` call, k=10, best of 3,
stores timed in alternation), the median latency of one-query calls, and recall@10 against exact
brute force; raw FAISS (exact, ids only) runs beside them as the reference.
``benchmarks/bench_scale.py --part milvus`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine, stsb_sentences  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.search import DocumentIndex  # noqa: E402

K, REPEATS, SINGLE_QUERIES, ADD_BATCH = 10, 3, 200, 4096


class Precomputed:
    """``encode`` of texts whose embeddings were computed once: a row lookup, no model."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self.rows, self.vectors = {text: row for row, text in enumerate(texts)}, vectors

    def encode(self, texts, **kwargs) -> np.ndarray:
        return self.vectors[[self.rows[text] for text in texts]]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="index at most this many sentences")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--backends", nargs="+", default=["flat", "hnsw"], choices=["flat", "hnsw", "ivf"])
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import milvus_lite
    import pymilvus

    sentences = list(dict.fromkeys(stsb_sentences(args.data_dir)))
    corpus, held_out = sentences[: -args.queries][: args.limit], sentences[-args.queries :]
    encoder = SentenceEncoder.from_pretrained(args.model)
    start = time.perf_counter()
    vectors = encoder.encode(corpus, batch_size=128, show_progress=False)
    queries = encoder.encode(held_out, batch_size=128, show_progress=False)
    print(
        f"# store benchmark, k={K}; {machine()}; faiss {faiss.__version__}, pymilvus {pymilvus.__version__}, "
        f"milvus-lite {milvus_lite.__version__}\n# {len(corpus)} distinct STS-B sentences, {len(held_out)} held-out "
        f"queries, {args.model}, embeddings computed once in {time.perf_counter() - start:.0f} s"
    )
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(_normalized(vectors))
    truth = exact.search(_normalized(queries), K)[1]
    [raw_qps] = _best([lambda: exact.search(_normalized(queries), K)], len(queries))
    print(
        f"{'store':<8} {'backend':<8} {'index':<8} {'build s':>8} {'batch QPS':>10} {'1-query ms':>10} {'recall@10':>9}"
    )
    print(f"{'raw':<8} {'flat':<8} {'Flat':<8} {'':>8} {raw_qps:>10.0f} {'':>10} {1.0:>9.3f}   (FAISS, ids only)")
    rows = [{"store": "raw faiss", "backend": "flat", "qps": raw_qps, "recall@10": 1.0}]
    encoder.encode = Precomputed(corpus, vectors).encode  # both stores get the same vectors, no model run
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends:
            indexes = {
                "faiss": DocumentIndex.create(Path(folder) / f"faiss-{backend}", encoder, backend=backend),
                "milvus": DocumentIndex.create(
                    Path(folder) / f"milvus-{backend}", encoder, backend=backend, store="milvus"
                ),
            }
            builds = {store: _build(index, corpus) for store, index in indexes.items()}
            qps = _best(
                [lambda index=index: index.search_vectors(queries, K) for index in indexes.values()], len(queries)
            )
            for (store, index), store_qps in zip(indexes.items(), qps, strict=True):
                found = index.search_vectors(queries, K)
                ids = np.array([[int(hit.id) for hit in hits] + [-1] * (K - len(hits)) for hits in found])
                row = {
                    "store": store,
                    "backend": backend,
                    "index": index.store.index_type,
                    "n": len(corpus),
                    "build_s": builds[store],
                    "qps": store_qps,
                    "one_query_ms": _latency(index, queries),
                    "recall@10": float(np.mean([len(set(t) & set(f)) / K for t, f in zip(truth, ids, strict=True)])),
                }
                rows.append(row)
                print(
                    f"{store:<8} {backend:<8} {row['index']:<8} {row['build_s']:>8.1f} {row['qps']:>10.0f} "
                    f"{row['one_query_ms']:>10.2f} {row['recall@10']:>9.3f}"
                )
                index.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    return rows


def _build(index: DocumentIndex, corpus: list[str]) -> float:
    """Seconds to add the corpus (ids are row numbers), Milvus flushed at the end."""
    start = time.perf_counter()
    for first in range(0, len(corpus), ADD_BATCH):
        texts = corpus[first : first + ADD_BATCH]
        index.add(texts, ids=[str(first + i) for i in range(len(texts))], show_progress=False)
    if index.manifest["store"]["kind"] == "milvus":
        index.store.client.flush(index.store.collection)  # seal the segments: the vector index is built
    return time.perf_counter() - start


def _best(runs: list, queries: int) -> list[float]:
    """Queries a second of each run (the best of :data:`REPEATS`, the runs alternating), after a warm-up."""
    for run in runs:
        run()
    seconds = [float("inf")] * len(runs)
    for _ in range(REPEATS):
        for position, run in enumerate(runs):
            start = time.perf_counter()
            run()
            seconds[position] = min(seconds[position], time.perf_counter() - start)
    return [queries / s for s in seconds]


def _latency(index: DocumentIndex, queries: np.ndarray) -> float:
    """Median milliseconds of a one-query ``search_vectors`` call."""
    times = []
    for query in queries[:SINGLE_QUERIES]:
        start = time.perf_counter()
        index.search_vectors(query, K)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


if __name__ == "__main__":
    main()
