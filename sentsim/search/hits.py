"""Search hits: what a query returns, assembled from FAISS ids and the stored chunks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Hit:
    """One search result: a document (and the chunk of it that matched).

    ``score`` is the search's own: a similarity (``mode="dense"``), a BM25 score (``"keyword"``) or
    a reciprocal-rank-fusion score (``"hybrid"``, which cannot be thresholded). Each arm that
    ran says where it put the hit: ``dense_rank`` / ``keyword_rank`` (1 = best) and the arm's
    score, None where that arm did not return it (or did not run).
    """

    id: str
    score: float
    text: str  # the matching chunk's text
    metadata: dict = field(default_factory=dict)
    start: int = 0  # the chunk's character offsets in the document
    end: int = 0
    dense_rank: int | None = None
    dense_score: float | None = None
    keyword_rank: int | None = None
    keyword_score: float | None = None


def assemble_hits(matches: dict, scores: np.ndarray, ids: np.ndarray, k: int, by: str) -> list[list[Hit]]:
    """The hits of each query row, best first, at most ``k``.

    ``matches`` maps a vector id to its chunk ``(doc_id, start, end, document text, metadata)``,
    read for all rows in one query; ids it lacks (-1, or a chunk deleted since) are skipped, and
    ``by="document"`` keeps each document's best chunk only.
    """
    results = []
    for row_scores, row_ids in zip(scores, ids, strict=True):
        hits, seen = [], set()
        for score, vector_id in zip(row_scores.tolist(), row_ids.tolist(), strict=True):
            match = matches.get(vector_id)
            if match is None or (by == "document" and match[0] in seen):
                continue  # -1 (no hit) or a chunk deleted since
            doc_id, start, end, text, meta = match
            seen.add(doc_id)
            hits.append(Hit(doc_id, score, text[start:end], meta, start, end))
            if len(hits) == k:
                break
        results.append(hits)
    return results
