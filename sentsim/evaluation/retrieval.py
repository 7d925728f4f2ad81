"""Retrieval evaluation: each query searched over the corpus, exactly or through a DocumentIndex,
scored against judgements."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sentsim.data.retrieval import RetrievalData
from sentsim.evaluation.ranking import retrieval_metrics
from sentsim.prompts import search_prompts
from sentsim.search.exact import exact_search
from sentsim.similarity import Metric
from sentsim.validation import check_instance

# The DocumentIndex.create options an evaluation may set (the metric is the evaluation's own).
INDEX_OPTIONS = ("backend", "precision", "rescore_factor", "truncate_dim")


def evaluate_retrieval(
    encoder,
    data: RetrievalData,
    *,
    metric: str | Metric = "cosine",
    recall_at: Sequence[int] = (1, 5, 10, 100),
    batch_size: int = 64,
    device: str | None = None,
    show_progress: bool | None = None,
    index: dict | None = None,
) -> dict:
    """MRR@10, nDCG@10 (primary), Recall@k and MAP@100 (x 100) with exact search on CPU or GPU.

    Queries and documents get the model's query and document prompts, as in search (:mod:`sentsim.prompts`).
    ``index``: search through a :class:`~sentsim.search.DocumentIndex` built from the corpus (in a
    temporary folder) with these :meth:`~sentsim.search.DocumentIndex.create` options, e.g.
    ``{"precision": "int8", "truncate_dim": 256}`` (keys: ``backend``, ``precision``,
    ``rescore_factor``, ``truncate_dim``), instead of exact search; ``{}`` is an exact flat index.
    """
    check_instance("data", data, RetrievalData, "read_beir or sts_paraphrase_retrieval")
    metric = Metric.parse(metric)
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    prompts = search_prompts(encoder.prompts)
    options = {"batch_size": batch_size, "show_progress": show_progress}
    queries = encoder.encode([data.queries[q] for q in query_ids], prompt=prompts["query"], **options)
    corpus = encoder.encode([data.corpus[d] for d in doc_ids], prompt=prompts["document"], **options)
    row_of = {doc: row for row, doc in enumerate(doc_ids)}
    exclude = [{row_of[d] for d in data.ignore.get(q, ())} for q in query_ids]
    depth = max(10, 100, *recall_at)
    if index is None:
        _, indices = exact_search(queries, corpus, depth, metric=metric, exclude=exclude, device=device)
        rankings = [[doc_ids[i] for i in row if i >= 0] for row in indices]
    else:
        rankings = index_rankings(encoder, data, queries, corpus, depth, metric=metric.value, options=index)
    results = retrieval_metrics(rankings, [data.relevant[q] for q in query_ids], recall_at=recall_at)
    return results | {
        "metric": metric.value,
        "queries": len(query_ids),
        "corpus": len(doc_ids),
        "primary_metric": "ndcg@10",
        **({"index": dict(index)} if index is not None else {}),
    }


def index_rankings(
    encoder, data: RetrievalData, queries: np.ndarray, corpus: np.ndarray, depth: int, *, metric: str, options: dict
) -> list[list[str]]:
    """The top ``depth`` document ids of each query (in ``data.queries`` order) through a DocumentIndex
    built from the corpus (its embeddings ``corpus``, in ``data.corpus`` order) with ``options``;
    each query's ignored documents are left out."""
    from sentsim.search import DocumentIndex  # the search package needs FAISS; exact evaluation does not

    if not isinstance(options, dict):
        raise TypeError(f"index must be a dict of DocumentIndex.create options, got {type(options).__name__}")
    unknown = sorted(set(options) - set(INDEX_OPTIONS))
    if unknown:
        raise ValueError(f"index options {unknown} are not among {', '.join(INDEX_OPTIONS)}")
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    widest = max((len(data.ignore.get(q, ())) for q in query_ids), default=0)
    with tempfile.TemporaryDirectory() as folder:
        index = DocumentIndex.create(Path(folder) / "index", encoder, metric=metric, **options)
        try:
            index.add([data.corpus[d] for d in doc_ids], ids=doc_ids, embeddings=corpus, show_progress=False)
            hits = index.search_vectors(queries, depth + widest)
        finally:
            index.close()
    return [
        [hit.id for hit in row if hit.id not in data.ignore.get(q, ())][:depth]
        for q, row in zip(query_ids, hits, strict=True)
    ]
