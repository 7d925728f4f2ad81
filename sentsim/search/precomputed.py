"""Embeddings computed elsewhere, matched to an index: documents' (``sentsim encode --engine ray``), queries'.

The embeddings folder records the model fingerprint, the prompt and the normalization it was
made with; an index takes its vectors only where all three are what it would have encoded with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentsim.distributed.shards import read_embeddings
from sentsim.fingerprint import fingerprint_mismatch


def embeddings_for(index, ids: list[str], folder: str | Path) -> np.ndarray:
    """The rows of the embeddings ``folder`` for documents ``ids`` (stored ids: str, ints as digits), in
    that order, once the folder is checked against ``index``.

    Raises a ValueError naming what differs (model fields, prompt, normalization), the first
    embeddings without a document, or the first documents without an embedding.
    """
    info, embedded_ids, vectors = read_embeddings(folder)
    different = fingerprint_mismatch(index.manifest["model"], info["model"])
    if different:
        raise ValueError(
            f"{folder} holds embeddings of model {info['model'].get('name')}; the index's model "
            f"({index.manifest['model'].get('name')}) differs in {', '.join(different)}"
        )
    prompt, expected = info["prompt"].get("text"), index.prompts["document"]
    if prompt != expected:
        raise ValueError(
            f"{folder} was encoded with the prompt {prompt!r}; the index encodes documents with {expected!r} "
            "(encode them with --prompt-name document, or the same --prompt)"
        )
    if info["normalize"] != index.encoder.normalize:
        state = "normalized" if info["normalize"] else "not normalized"
        raise ValueError(
            f"{folder} holds {state} embeddings; the index's model normalize={index.encoder.normalize} "
            "(encode with the model's own setting)"
        )
    row = {doc_id: position for position, doc_id in enumerate(embedded_ids)}
    missing = [doc_id for doc_id in ids if doc_id not in row]
    if missing:
        raise ValueError(f"{len(missing)} documents have no embedding in {folder}, e.g. ids {missing[:5]}")
    extra = sorted(set(row) - set(ids))
    if extra:
        raise ValueError(f"{folder} holds {len(extra)} embeddings without a document, e.g. ids {extra[:5]}")
    return vectors[[row[doc_id] for doc_id in ids]]


def query_vectors(vectors: object, dim: int, count: int | None = None) -> np.ndarray:
    """Query embeddings as float32 ``(n, dim)`` (``count`` rows where given; a 1-D vector is one row),
    or an error naming what is wrong."""
    try:
        vectors = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(f"query vectors must be an array of numbers, got {type(vectors).__name__}") from None
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    if vectors.ndim != 2 or vectors.shape[1] != dim or (count is not None and len(vectors) != count):
        raise ValueError(
            f"query vectors must have shape ({'n' if count is None else count}, {dim}), got {vectors.shape}"
        )
    if not np.isfinite(vectors).all():
        raise ValueError("query vectors contain NaN or infinity")
    return vectors
