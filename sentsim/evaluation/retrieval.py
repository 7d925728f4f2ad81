"""Retrieval evaluation: each query searched over the corpus (exact search, or through an index), scored
against judgements."""

from __future__ import annotations

from collections.abc import Sequence

from sentsim.data.retrieval import RetrievalData
from sentsim.evaluation.indexed import IndexSearch, index_rankings
from sentsim.evaluation.ranking import retrieval_metrics
from sentsim.prompts import search_prompts
from sentsim.search.exact import exact_search
from sentsim.similarity import Metric
from sentsim.validation import check_instance


def evaluate_retrieval(
    encoder,
    data: RetrievalData,
    *,
    metric: str | Metric = "cosine",
    recall_at: Sequence[int] = (1, 5, 10, 100),
    batch_size: int = 64,
    device: str | None = None,
    show_progress: bool | None = None,
    index: IndexSearch | None = None,
) -> dict:
    """MRR@10, nDCG@10 (primary), Recall@k and MAP@100 (x 100) with exact search on CPU or GPU, or
    through a :class:`~sentsim.search.DocumentIndex` of the corpus built as ``index`` says (its
    search mode, e.g. ``IndexSearch(mode="hybrid")``, and index options; ``device`` is then the
    model's).

    Queries and documents get the model's query and document prompts, as in search (:mod:`sentsim.prompts`).
    """
    check_instance("data", data, RetrievalData, "read_beir or sts_paraphrase_retrieval")
    metric = Metric.parse(metric)
    query_ids = list(data.queries)
    depth = max(10, 100, *recall_at)
    options = {"batch_size": batch_size, "show_progress": show_progress}
    if index is not None:
        check_instance("index", index, IndexSearch, "IndexSearch(mode=...)")
        rankings = index_rankings(encoder, data, query_ids, depth, index, metric=metric.value, **options)
    else:
        rankings = _exact_rankings(encoder, data, query_ids, depth, metric, device, options)
    results = retrieval_metrics(rankings, [data.relevant[q] for q in query_ids], recall_at=recall_at)
    return results | {
        "metric": metric.value,
        "queries": len(query_ids),
        "corpus": len(data.corpus),
        "search": "exact" if index is None else index.mode,
        "primary_metric": "ndcg@10",
    }


def _exact_rankings(
    encoder, data: RetrievalData, query_ids: list[str], depth: int, metric: Metric, device: str | None, options: dict
) -> list[list[str]]:
    """The top ``depth`` document ids of each query by exact search (its ignored documents left out)."""
    doc_ids = list(data.corpus)
    prompts = search_prompts(encoder.prompts)
    queries = encoder.encode([data.queries[q] for q in query_ids], prompt=prompts["query"], **options)
    corpus = encoder.encode([data.corpus[d] for d in doc_ids], prompt=prompts["document"], **options)
    row_of = {doc: row for row, doc in enumerate(doc_ids)}
    exclude = [{row_of[d] for d in data.ignore.get(q, ())} for q in query_ids]
    _, indices = exact_search(queries, corpus, depth, metric=metric, exclude=exclude, device=device)
    return [[doc_ids[i] for i in row if i >= 0] for row in indices]
