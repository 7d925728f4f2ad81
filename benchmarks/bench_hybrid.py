"""Hybrid search: nDCG@10 of keyword, dense and hybrid search through a DocumentIndex, beside bm25s and
sentence-transformers (and reciprocal rank fusion of the two by hand), in one run.

    python benchmarks/bench_hybrid.py [--model all-MiniLM-L6-v2] [--data-dir ../shared/data] [--json out.json]

Two tasks, each with a validation split (which chooses the keyword weight) and a test split:

- STS-B paraphrase retrieval: queries = sentence1 of the pairs scored >= 4 (dev / test), relevant =
  their sentence2, corpus = every distinct sentence of train + dev + test (the query's own text is
  left out of its ranking);
- CLINC150 same-intent retrieval: queries = the val / test texts, relevant = the 100 training texts
  of the same intent, corpus = the 15,000 training texts.

Each corpus is indexed once (flat, cosine, the default keyword tokenizer); every split is scored
by the evaluator's own path (``evaluate_retrieval(..., index=IndexSearch(mode=...))``: 100 hits a
query, hybrid fusing 10 x 100 of each arm): dense, keyword, hybrid with the default weights (1:1),
and hybrid with the keyword weight that scored best on the validation split (a grid; weights are
compared by fusing the two arms' stored rankings, as ``search(mode="hybrid")`` does, then the
chosen weight is searched end to end). Searches a second per mode are timed on the test queries
(k=10, one query a call, its embedding computed beforehand; shared machines distort them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.data import (  # noqa: E402
    RetrievalData,
    load_clinc150,
    load_stsb,
    same_label_retrieval,
    sts_paraphrase_retrieval,
)
from sentsim.evaluation import IndexSearch, retrieval_metrics  # noqa: E402
from sentsim.evaluation.indexed import build_index, search_rankings  # noqa: E402
from sentsim.search.hybrid import DEPTH, RRF_K, WEIGHTS, fuse  # noqa: E402
from sentsim.storage.hub import resolve_model_path  # noqa: E402

DEPTH_EVAL = 100  # hits a query, as evaluate_retrieval
KEYWORD_WEIGHTS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--max-queries", type=int, help="score at most this many queries of each split")
    parser.add_argument("--no-peers", action="store_true", help="skip bm25s and sentence-transformers")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    encoder = SentenceEncoder.from_pretrained(args.model)
    peers = None if args.no_peers else Peers(args.model)
    print(f"# hybrid search, {args.model}; {machine()}")
    print(f"{'task':<8} {'split':<5} {'queries':>7}  {'search':<38} {'nDCG@10':>7} {'MRR@10':>7} {'R@10':>6}")
    start, results = time.perf_counter(), {"machine": machine(), "model": args.model, "tasks": {}}
    for name, (validation, test) in tasks(args.data_dir).items():
        with tempfile.TemporaryDirectory(prefix="bench-hybrid-") as folder:
            index = build_index(
                Path(folder) / "index", encoder, test.corpus, IndexSearch(), metric="cosine", batch_size=128,
                show_progress=False,
            )  # fmt: skip
            with index:
                results["tasks"][name] = run_task(name, index, validation, test, args.max_queries, peers)
    print(f"# {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def tasks(data_dir: Path) -> dict[str, tuple[RetrievalData, RetrievalData]]:
    """``name -> (validation, test)``, the two splits of a task over one corpus with the same ids."""
    stsb = {split: load_stsb(split, data_dir=data_dir) for split in ("train", "dev", "test")}
    sts_test = sts_paraphrase_retrieval(stsb["test"], [stsb["train"], stsb["dev"]])
    sts_dev = same_ids(sts_paraphrase_retrieval(stsb["dev"], [stsb["train"], stsb["test"]]), sts_test.corpus)
    clinc = {split: load_clinc150(split, data_dir=data_dir) for split in ("train", "val", "test")}
    return {
        "STS-B": (sts_dev, sts_test),
        "CLINC150": (same_label_retrieval(clinc["val"], clinc["train"]), same_label_retrieval(clinc["test"], clinc["train"])),
    }  # fmt: skip


def same_ids(data: RetrievalData, corpus: dict[str, str]) -> RetrievalData:
    """``data`` with its documents named as in ``corpus`` (the same distinct texts under other ids)."""
    id_of = {text: doc for doc, text in corpus.items()}
    rename = {doc: id_of[text] for doc, text in data.corpus.items()}
    return RetrievalData(
        queries=data.queries,
        corpus=corpus,
        relevant={q: {rename[d] for d in docs} for q, docs in data.relevant.items()},
        ignore={q: {rename[d] for d in docs} for q, docs in data.ignore.items()},
    )


def run_task(name: str, index, validation: RetrievalData, test: RetrievalData, max_queries, peers) -> dict:
    """Both splits: the validation split chooses the keyword weight that the test split is searched with."""
    val = run_split(name, "val", index, validation, max_queries, None, peers)
    return {"val": val, "test": run_split(name, "test", index, test, max_queries, val["chosen_keyword_weight"], peers)}


def run_split(name: str, split: str, index, data: RetrievalData, max_queries, chosen, peers) -> dict:
    query_ids = list(data.queries)[:max_queries]
    texts = [data.queries[q] for q in query_ids]
    vectors = index.encoder.encode(texts, prompt=index.prompts["query"], batch_size=128, show_progress=False)
    relevant = [data.relevant[q] for q in query_ids]

    def score(rankings):
        return retrieval_metrics(rankings, relevant, recall_at=(10, 100))

    def searched(mode, weights=None):
        options = {"mode": mode} | ({"embeddings": vectors} if mode != "keyword" else {})
        options |= {"weights": weights} if weights is not None else {}
        return score(search_rankings(index, data, query_ids, DEPTH_EVAL, options))

    rows = {"dense": searched("dense"), "keyword": searched("keyword"), "hybrid 1:1": searched("hybrid")}
    report = {}
    if chosen is None:  # the validation split
        grid = weight_grid(index, data, query_ids, vectors, score)
        report["grid"] = {str(weight): metrics["ndcg@10"] for weight, metrics in grid.items()}
        chosen = max(grid, key=lambda weight: grid[weight]["ndcg@10"])
        hybrid = f"hybrid keyword={chosen} (best on val)"
        rows[hybrid] = grid[chosen]
    else:
        hybrid = f"hybrid keyword={chosen} (chosen on val)"
        rows[hybrid] = searched("hybrid", {"keyword": chosen})
        report["qps"] = {mode: qps(index, texts, vectors, mode) for mode in ("dense", "keyword", "hybrid")}
    if peers is not None:
        rows |= peers.scores(data, query_ids, score)
    for label, metrics in rows.items():
        print(
            f"{name:<8} {split:<5} {len(query_ids):>7}  {label:<38} {metrics['ndcg@10']:>7.2f} "
            f"{metrics['mrr@10']:>7.2f} {metrics['recall@10']:>6.2f}"
        )
    if "grid" in report:
        print(
            f"{name:<8} {split:<5} nDCG@10 by keyword weight: "
            + ", ".join(f"{w} {v:.2f}" for w, v in report["grid"].items())
        )
    if "qps" in report:
        speed = ", ".join(f"{m} {q:,.0f}" for m, q in report["qps"].items())
        print(f"{name:<8} {split:<5} searches/s, k=10, one query a call, query embedded already: {speed}")
    best_arm = max(rows["dense"]["ndcg@10"], rows["keyword"]["ndcg@10"])
    print(
        f"{name:<8} {split:<5} hybrid - better arm (nDCG@10): 1:1 {rows['hybrid 1:1']['ndcg@10'] - best_arm:+.2f}, "
        f"keyword={chosen} {rows[hybrid]['ndcg@10'] - best_arm:+.2f}"
    )
    return report | {"rows": rows, "queries": len(query_ids), "chosen_keyword_weight": chosen}


def weight_grid(index, data, query_ids, vectors, score) -> dict[float, dict]:
    """Metrics of hybrid search by keyword weight: both arms searched once, fused as ``search(mode="hybrid")``
    fuses them (the same depth and function), for each weight."""
    skip = max((len(data.ignore.get(q, ())) for q in query_ids), default=0)
    k = DEPTH_EVAL + skip
    texts = [data.queries[q] for q in query_ids]
    dense = index.search(texts, k=DEPTH * k, mode="dense", embeddings=vectors)
    keyword = index.search(texts, k=DEPTH * k, mode="keyword")
    grid = {}
    for weight in KEYWORD_WEIGHTS:
        weights = WEIGHTS | {"keyword": weight}
        rankings = []
        for qid, d, kw in zip(query_ids, dense, keyword, strict=True):
            ignored = data.ignore.get(qid, set())
            fused = fuse(d, kw, k, weights=weights, by="chunk")
            rankings.append([hit.id for hit in fused if hit.id not in ignored][:DEPTH_EVAL])
        grid[weight] = score(rankings)
    return grid


def qps(index, texts: list[str], vectors, mode: str, limit: int = 500) -> float:
    """Searches a second, one query a call (as a user's), k=10, the query embedded already (the one model
    call dense and hybrid share is not timed)."""
    texts = texts[:limit]
    start = time.perf_counter()
    for row, text in enumerate(texts):
        index.search(text, k=10, mode=mode, **({"embeddings": vectors[row : row + 1]} if mode != "keyword" else {}))
    return len(texts) / (time.perf_counter() - start)


class Peers:
    """What a user would pick instead: bm25s (BM25, English stop words), sentence-transformers' exact
    search, and reciprocal rank fusion (k=60, 1:1, 1,000 deep) of the two written by hand."""

    def __init__(self, model: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(resolve_model_path(model)), device="cpu")
        self._corpus = None

    def scores(self, data: RetrievalData, query_ids: list[str], score) -> dict:
        import bm25s
        from sentence_transformers import util

        doc_ids = list(data.corpus)
        if self._corpus is not doc_ids and self._corpus != doc_ids:
            texts = [data.corpus[d] for d in doc_ids]
            self._bm25 = bm25s.BM25()
            self._bm25.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            self._embeddings = self.model.encode(texts, batch_size=128, convert_to_tensor=True)
            self._corpus = doc_ids
        queries = [data.queries[q] for q in query_ids]
        skip = max((len(data.ignore.get(q, ())) for q in query_ids), default=0)
        deep = DEPTH * (DEPTH_EVAL + skip)
        found, _ = self._bm25.retrieve(
            bm25s.tokenize(queries, stopwords="en", show_progress=False), k=min(deep, len(doc_ids)), show_progress=False
        )
        query_embeddings = self.model.encode(queries, batch_size=128, convert_to_tensor=True)
        dense = util.semantic_search(query_embeddings, self._embeddings, top_k=deep)
        keyword_lists, dense_lists, fused_lists = [], [], []
        for qid, keyword_rows, dense_rows in zip(query_ids, found, dense, strict=True):
            ignored = data.ignore.get(qid, set())
            keyword_list = [doc_ids[i] for i in keyword_rows if doc_ids[i] not in ignored]
            dense_list = [doc_ids[row["corpus_id"]] for row in dense_rows if doc_ids[row["corpus_id"]] not in ignored]
            fused: dict[str, float] = {}
            for ranking in (dense_list, keyword_list):
                for rank, doc in enumerate(ranking, 1):
                    fused[doc] = fused.get(doc, 0.0) + 1 / (RRF_K + rank)
            keyword_lists.append(keyword_list[:DEPTH_EVAL])
            dense_lists.append(dense_list[:DEPTH_EVAL])
            fused_lists.append(sorted(fused, key=lambda doc: -fused[doc])[:DEPTH_EVAL])
        return {
            "peer: sentence-transformers (dense)": score(dense_lists),
            "peer: bm25s, en stop words (keyword)": score(keyword_lists),
            "peer: RRF of the two by hand (1:1)": score(fused_lists),
        }


if __name__ == "__main__":
    main()
