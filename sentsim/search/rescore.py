"""Exact scores from the float vectors a store holds: rescoring candidates, and exact search.

An index that quantizes or truncates its vectors (:mod:`sentsim.search.precision`) finds
candidates with its codes; :func:`rescore` reads their full float vectors in one batched read and
ranks them by the exact similarity. :func:`exact_top_k` is the search over stored vectors that
completes what an approximate index missed. Both score as an exact float index would (see
:mod:`sentsim.similarity`: cosine, dot, negative euclidean distance).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sentsim.search.backends import _pad
from sentsim.search.exact import exact_search

ROWS_PER_BLOCK = 256  # queries whose candidates' vectors are gathered at once


def rescore(
    queries: np.ndarray,
    candidates: np.ndarray,
    read_vectors: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    metric: str,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of each query's candidates by exact similarity: ``(scores, ids)``, ``(n, k)``.

    Args:
        queries: full query vectors ``(n, dim)``.
        candidates: vector ids ``(n, c)`` from the index, -1 for none.
        read_vectors: sorted unique ids -> ``(ids, vectors)`` of those stored (one read for all queries).
        metric: ``cosine``, ``dot`` or ``euclidean``.
        k: hits to keep; missing slots are -inf / -1.
    """
    found, vectors = read_vectors(np.unique(candidates[candidates >= 0]))
    if len(found) == 0:
        return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
    queries, vectors = _prepared(queries, metric), _prepared(vectors, metric)
    position = np.minimum(np.searchsorted(found, candidates), len(found) - 1)
    present = (candidates >= 0) & (found[position] == candidates)  # a candidate deleted since has no vector
    scores = np.full(candidates.shape, -np.inf, np.float32)
    for start in range(0, len(queries), ROWS_PER_BLOCK):
        rows = slice(start, start + ROWS_PER_BLOCK)
        exact = _pair_scores(queries[rows], vectors[position[rows]], metric)
        scores[rows] = np.where(present[rows], exact, -np.inf)
    keep = min(k, candidates.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :keep]
    top_scores = np.take_along_axis(scores, order, axis=1)
    top_ids = np.where(np.isneginf(top_scores), -1, np.take_along_axis(candidates, order, axis=1))
    return _pad(top_scores, k, -np.inf), _pad(top_ids, k, -1)


def exact_top_k(
    queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, metric: str, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k ``(scores, ids)`` of ``queries`` among ``vectors`` (whose ids are ``ids``), on CPU."""
    if len(ids) == 0:
        return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
    queries, vectors = _prepared(queries, metric), _prepared(vectors, metric)
    scores, rows = exact_search(queries, vectors, k, metric="dot" if metric == "cosine" else metric, device="cpu")
    found = np.where(rows >= 0, ids[np.maximum(rows, 0)], -1)
    return _pad(scores, k, -np.inf), _pad(found, k, -1)


def _prepared(vectors: np.ndarray, metric: str) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def _pair_scores(queries: np.ndarray, gathered: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of each query ``(n, d)`` with its gathered candidates ``(n, c, d)``: ``(n, c)``."""
    if metric == "euclidean":
        return -np.linalg.norm(gathered - queries[:, None, :], axis=2)
    return np.einsum("nd,ncd->nc", queries, gathered)
