"""Exact nearest-neighbour search as chunked matrix products + top-k, on CPU or GPU (torch)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from sentsim.encode.devices import resolve_device
from sentsim.similarity import Metric, similarity
from sentsim.validation import check_int


def exact_search(
    queries: np.ndarray | Tensor,
    corpus: np.ndarray | Tensor,
    k: int,
    *,
    metric: str | Metric = "cosine",
    exclude: Sequence[set[int]] | None = None,
    device: str | torch.device | None = None,
    query_chunk: int = 1024,
    corpus_chunk: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` corpus rows for each query: ``(scores, indices)``, both ``(n_queries, min(k, n_corpus))``.

    Scores are similarities (higher first, see :mod:`sentsim.similarity`). ``exclude[i]`` holds
    corpus rows never returned for query i (those queries may get fewer hits; missing slots
    have index -1 and score -inf). A 1-D ``queries`` is one query (the result still has one row).
    """
    for name, value in (("k", k), ("query_chunk", query_chunk), ("corpus_chunk", corpus_chunk)):
        check_int(name, value, minimum=1)
    k = int(k)
    device = resolve_device(device)
    queries_t, corpus_t = _matrix(queries, "queries").to(device), _matrix(corpus, "corpus").to(device)
    if queries_t.shape[1] != corpus_t.shape[1]:
        raise ValueError(f"queries have dimension {queries_t.shape[1]}, the corpus {corpus_t.shape[1]}")
    if exclude is not None and len(exclude) != len(queries_t):
        raise ValueError(f"exclude has {len(exclude)} entries for {len(queries_t)} queries")
    k = min(k, len(corpus_t))
    all_scores, all_indices = [], []
    for q_start in range(0, len(queries_t), query_chunk):
        block = queries_t[q_start : q_start + query_chunk]
        best_scores = torch.full((len(block), 0), float("-inf"), device=device)
        best_indices = torch.zeros((len(block), 0), dtype=torch.long, device=device)
        for c_start in range(0, len(corpus_t), corpus_chunk):
            scores = similarity(block, corpus_t[c_start : c_start + corpus_chunk], metric)  # (q, c)
            if exclude is not None:
                _mask(scores, exclude[q_start : q_start + len(block)], c_start)
            top = torch.topk(scores, min(k, scores.shape[1]), dim=1)
            best_scores = torch.cat([best_scores, top.values], dim=1)
            best_indices = torch.cat([best_indices, top.indices + c_start], dim=1)
            keep = torch.topk(best_scores, min(k, best_scores.shape[1]), dim=1)
            best_scores, best_indices = keep.values, torch.gather(best_indices, 1, keep.indices)
        all_scores.append(best_scores.cpu())
        all_indices.append(best_indices.cpu())
    scores = torch.cat(all_scores).numpy() if all_scores else np.zeros((0, k), np.float32)
    indices = torch.cat(all_indices).numpy() if all_indices else np.zeros((0, k), np.int64)
    indices[np.isneginf(scores)] = -1
    return scores, indices


def _matrix(vectors: np.ndarray | Tensor, name: str) -> Tensor:
    """``vectors`` as a float32 ``(n, d)`` tensor (a 1-D vector is one row)."""
    if not isinstance(vectors, Tensor):
        try:
            vectors = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a numeric (n, d) array or tensor, got {type(vectors).__name__}") from None
    tensor = torch.as_tensor(vectors).float()
    if tensor.ndim == 1:
        tensor = tensor[None, :]
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be (n, d) or one (d,) vector, got shape {tuple(tensor.shape)}")
    return tensor


def _mask(scores: Tensor, exclude: Sequence[set[int]], offset: int) -> None:
    width = scores.shape[1]
    for row, rows_out in enumerate(exclude):
        columns = [i - offset for i in rows_out if offset <= i < offset + width]
        if columns:
            scores[row, columns] = float("-inf")
