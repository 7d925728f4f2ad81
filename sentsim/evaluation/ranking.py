"""Ranking metrics for retrieval: MRR, nDCG, recall and MAP at cut-offs (binary relevance)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentsim.data.columns import plain_list
from sentsim.validation import check_int


def retrieval_metrics(
    rankings: Sequence[Sequence[str]],
    relevant: Sequence[set[str]],
    *,
    mrr_at: int = 10,
    ndcg_at: int = 10,
    recall_at: Sequence[int] = (1, 5, 10, 100),
    map_at: int = 100,
) -> dict[str, float]:
    """Mean over queries (x 100) of MRR@k, nDCG@k, Recall@k and MAP@k.

    ``rankings[i]`` is the ranked document ids for query i, ``relevant[i]`` its relevant ids
    (non-empty). MAP@k divides by ``min(k, |relevant|)``.
    """
    rankings = [plain_list(ranking) for ranking in rankings]  # a 2-D array or a Series of lists too
    relevant = list(relevant)
    if len(rankings) != len(relevant):
        raise ValueError(f"{len(rankings)} rankings but {len(relevant)} relevance sets")
    if not rankings:
        raise ValueError("no queries to evaluate")
    for name, k in (
        ("mrr_at", mrr_at),
        ("ndcg_at", ndcg_at),
        ("map_at", map_at),
        *(("recall_at", k) for k in recall_at),
    ):
        check_int(f"{name} cut-off", k, minimum=1)
    per_query: dict[str, list[float]] = {f"mrr@{mrr_at}": [], f"ndcg@{ndcg_at}": [], f"map@{map_at}": []}
    per_query.update({f"recall@{k}": [] for k in recall_at})
    for ranking, documents in zip(rankings, relevant, strict=True):
        if not documents:
            raise ValueError("a query has no relevant document")
        hits = np.fromiter((doc in documents for doc in ranking), dtype=bool, count=len(ranking))
        per_query[f"mrr@{mrr_at}"].append(_reciprocal_rank(hits[:mrr_at]))
        per_query[f"ndcg@{ndcg_at}"].append(_ndcg(hits[:ndcg_at], len(documents)))
        per_query[f"map@{map_at}"].append(_average_precision(hits[:map_at], min(map_at, len(documents))))
        for k in recall_at:
            per_query[f"recall@{k}"].append(hits[:k].sum() / len(documents))
    return {name: 100 * float(np.mean(values)) for name, values in per_query.items()}


def _reciprocal_rank(hits: np.ndarray) -> float:
    first = np.flatnonzero(hits)
    return 1.0 / (first[0] + 1) if first.size else 0.0


def _ndcg(hits: np.ndarray, n_relevant: int) -> float:
    discounts = 1.0 / np.log2(np.arange(2, len(hits) + 2))
    ideal = discounts[: min(n_relevant, len(hits))].sum() if len(hits) else 0.0
    return float((hits * discounts).sum() / ideal) if ideal > 0 else 0.0


def _average_precision(hits: np.ndarray, denominator: int) -> float:
    ranks = np.flatnonzero(hits) + 1
    return float((np.arange(1, ranks.size + 1) / ranks).sum() / denominator) if denominator else 0.0
