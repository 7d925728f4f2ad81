"""Retrieval evaluation: exact search of each query over the corpus, scored against judgements."""

from __future__ import annotations

from collections.abc import Sequence

from sentsim.data.retrieval import RetrievalData
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
) -> dict:
    """MRR@10, nDCG@10 (primary), Recall@k and MAP@100 (x 100) with exact search on CPU or GPU.

    Queries and documents get the model's query and document prompts, as in search (:mod:`sentsim.prompts`).
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
    _, indices = exact_search(queries, corpus, depth, metric=metric, exclude=exclude, device=device)
    rankings = [[doc_ids[i] for i in row if i >= 0] for row in indices]
    results = retrieval_metrics(rankings, [data.relevant[q] for q in query_ids], recall_at=recall_at)
    return results | {
        "metric": metric.value,
        "queries": len(query_ids),
        "corpus": len(doc_ids),
        "primary_metric": "ndcg@10",
    }
