"""Search modes: dense (vectors), keyword (BM25) and hybrid, one ranking from both by reciprocal rank fusion.

Hybrid search asks each arm for ``DEPTH`` times k hits (the same filter and ``by`` in both). A
hit ranked r-th by an arm gets ``weight / (60 + r)`` from it (the constant of Cormack et al.,
2009, which LanceDB and Elasticsearch use too), and the fused ranking orders hits by the sum
over both arms. The scales of the two arms' scores (a cosine similarity, a BM25 score) never
meet, so neither needs normalizing; the fused score ranks but means nothing on its own, so each
hit keeps both arms' ranks and scores (:class:`~sentsim.search.Hit`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from sentsim.search.filters import Condition
from sentsim.search.hits import Hit
from sentsim.search.stores import IndexStore
from sentsim.validation import check_choice

MODES = ("dense", "keyword", "hybrid")
ARMS = ("dense", "keyword")
RRF_K = 60
DEPTH = 10  # hits each arm contributes to a hybrid search, per hit asked for
WEIGHTS = {"dense": 1.0, "keyword": 1.0}

__all__ = [
    "ARMS",
    "DEPTH",
    "MODES",
    "RRF_K",
    "WEIGHTS",
    "check_mode",
    "check_weights",
    "fuse",
    "ranked",
    "search_modes",
]


def search_modes(
    store: IndexStore,
    texts: list[str],
    vectors: np.ndarray | None,
    k: int,
    conditions: list[Condition] | None,
    *,
    mode: str,
    by: str,
    weights: Mapping[str, float],
    nprobe: int | None,
    ef_search: int | None,
) -> list[list[Hit]]:
    """The ``k`` best hits of each query in ``mode`` (checked), from ``store``'s vector search of
    ``vectors`` (dense, hybrid), its keyword search of ``texts`` (keyword, hybrid), or both fused."""
    depth = DEPTH * k if mode == "hybrid" else k
    if mode != "keyword":
        dense = store.search(vectors, depth, conditions, by=by, nprobe=nprobe, ef_search=ef_search)
    if mode != "dense":
        keyword = store.keyword_search(texts, depth, conditions, by=by)
    if mode == "dense":
        return [ranked(hits, "dense") for hits in dense]
    if mode == "keyword":
        return [ranked(hits, "keyword") for hits in keyword]
    return [fuse(d, kw, k, weights=weights, by=by) for d, kw in zip(dense, keyword, strict=True)]


def check_mode(
    mode: object, weights: object, store: IndexStore, kind: str, dense: Mapping[str, object]
) -> tuple[str, dict[str, float]]:
    """``(mode, weights)`` checked against each other, the ``store`` (of ``kind``) and the options
    of the dense arm (by name; None where not given), before anything is encoded."""
    dense_options = [name for name, value in dense.items() if value is not None]
    mode = check_choice("mode", mode, MODES)
    if mode != "dense" and not store.keywords:
        raise ValueError(
            f"mode={mode!r} needs a keyword index, which the {kind} store does not keep; "
            "search with mode='dense', or build the index with store='faiss'"
        )
    if mode == "keyword" and dense_options:
        raise ValueError(f"{', '.join(dense_options)}: the dense arm's, and mode='keyword' has none")
    if mode != "hybrid" and weights is not None:
        raise ValueError(f"weights weigh the two arms of mode='hybrid'; this search is mode={mode!r}")
    return mode, check_weights(weights, WEIGHTS)


def check_weights(weights: object, default: Mapping[str, float]) -> dict[str, float]:
    """``{"dense": w, "keyword": w}``: ``default`` updated with ``weights`` (a mapping of arm -> a finite
    number >= 0, not both 0), or an error naming what is wrong."""
    if weights is None:
        return dict(default)
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a dict of arm -> weight, e.g. {{'keyword': 0.5}}, got {weights!r}")
    checked = dict(default)
    for arm, weight in weights.items():
        if arm not in ARMS:
            raise ValueError(f"weights: unknown arm {arm!r}; expected 'dense' or 'keyword'")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weights[{arm!r}] must be a finite number >= 0, got {weight!r}")
        checked[arm] = float(weight)
    if not any(checked.values()):
        raise ValueError("weights: at least one arm needs a weight above 0")
    return checked


def ranked(hits: list[Hit], arm: str) -> list[Hit]:
    """``hits`` of one arm, best first, each with that arm's rank and score filled in."""
    return [replace(hit, **{f"{arm}_rank": rank, f"{arm}_score": hit.score}) for rank, hit in enumerate(hits, 1)]


def fuse(dense: list[Hit], keyword: list[Hit], k: int, *, weights: Mapping[str, float], by: str) -> list[Hit]:
    """The ``k`` best hits of one query by weighted reciprocal rank over both arms' rankings.

    A chunk is one entry (``by="chunk"``), or a document (``by="document"``: each arm's list then
    holds each document once, and the hit shows the chunk of the arm that ranks it higher). Ties
    keep the order in which the hits were first seen, the dense arm's first.
    """
    fused: dict[tuple, Hit] = {}
    scores: dict[tuple, float] = {}
    for arm, hits in (("dense", dense), ("keyword", keyword)):
        for hit in ranked(hits, arm):
            key = (hit.id,) if by == "document" else (hit.id, hit.start, hit.end)
            rank = getattr(hit, f"{arm}_rank")
            scores[key] = scores.get(key, 0.0) + weights[arm] / (RRF_K + rank)
            seen = fused.get(key)
            if seen is None:
                fused[key] = hit
            elif arm == "keyword":  # seen by the dense arm: add the keyword side, and its chunk if ranked higher
                base = hit if rank < seen.dense_rank else seen
                sides = {"dense_rank": seen.dense_rank, "dense_score": seen.dense_score}
                fused[key] = replace(base, **sides, keyword_rank=rank, keyword_score=hit.keyword_score)
    best = sorted(fused, key=lambda key: -scores[key])[:k]
    return [replace(fused[key], score=scores[key]) for key in best]
