"""Documents on their way into the index: validated, chunked, and keyed by content hash."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from sentsim.inputs import validate_texts
from sentsim.search.chunking import Chunk, chunk_text


@dataclass(frozen=True)
class PlannedDocument:
    """One document to write: its chunks, each chunk's content hash, and what is stored under its id."""

    id: str
    text: str
    metadata: dict
    chunks: list[Chunk]
    hashes: list[str]
    stored: tuple[str, dict] | None  # (text, metadata) already in the index under this id

    @property
    def unchanged(self) -> bool:
        """The stored text is the same: only the metadata may change."""
        return self.stored is not None and self.stored[0] == self.text

    def chunk_texts(self) -> dict[str, str]:
        """Content hash -> chunk text."""
        return {h: self.text[c.start : c.end] for c, h in zip(self.chunks, self.hashes, strict=True)}


def validate_documents(
    texts: Sequence[str], ids: Sequence[str] | None, metadata: Sequence[dict | None] | None
) -> tuple[list[str], list[str], list[dict | None]]:
    """Check texts, ids (new UUIDs when None) and metadata, one of each per document."""
    texts = validate_texts(texts)
    ids = [str(uuid.uuid4()) for _ in texts] if ids is None else validate_texts(ids, "ids")
    metadata = [None] * len(texts) if metadata is None else list(metadata)
    if not (len(texts) == len(ids) == len(metadata)):
        raise ValueError(
            f"{len(texts)} texts, {len(ids)} ids and {len(metadata)} metadata entries: give one of each per document"
        )
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate ids in one call: {sorted({i for i in ids if ids.count(i) > 1})[:5]}")
    for row, (doc_id, meta) in enumerate(zip(ids, metadata, strict=True)):
        if not doc_id:
            raise ValueError(f"ids[{row}] is empty")
        if meta is not None and not isinstance(meta, dict):
            raise TypeError(f"metadata[{row}] must be a dict or None, got {type(meta).__name__}")
        try:
            json.dumps(meta, allow_nan=False)  # NaN / Infinity are not JSON: SQLite's json functions reject them
        except ValueError:
            raise ValueError(f"metadata[{row}] holds NaN or infinity, which JSON cannot store") from None
        except TypeError:
            raise TypeError(f"metadata[{row}] is not JSON-serializable") from None
    return texts, ids, metadata


def plan_documents(
    texts: list[str],
    ids: list[str],
    metadata: list[dict | None],
    stored: Callable[[str], tuple[str, dict] | None],
    tokenizer: Tokenizer,
    chunk_size: int | None,
    chunk_overlap: int,
) -> list[PlannedDocument]:
    """Chunk each document and hash its chunks; ``stored(id)`` gives what the index holds under an id."""
    plan = []
    for doc_id, text, meta in zip(ids, texts, metadata, strict=True):
        chunks = chunk_text(text, tokenizer, chunk_size, chunk_overlap)
        hashes = [content_hash(text[c.start : c.end]) for c in chunks]
        plan.append(PlannedDocument(doc_id, text, meta or {}, chunks, hashes, stored(doc_id)))
    return plan


def content_hash(text: str) -> str:
    """The embedding cache key of a chunk (the model is fixed per index)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
