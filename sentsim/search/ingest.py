"""Documents on their way into the index: validated, chunked, and keyed by content hash."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from tokenizers import Tokenizer

from sentsim.search.chunking import Chunk, chunk_text
from sentsim.tokenization import untruncated
from sentsim.validation import validate_ids, validate_texts


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
        """The stored text is the same (so are its chunks: the index chunks every text alike): only
        the metadata may change."""
        return self.stored is not None and self.stored[0] == self.text

    def chunk_texts(self) -> dict[str, str]:
        """Content hash -> chunk text."""
        return {h: self.text[c.start : c.end] for c, h in zip(self.chunks, self.hashes, strict=True)}


def validate_documents(
    texts: Sequence[str], ids: Sequence[str | int] | None, metadata: Sequence[dict | None] | None
) -> tuple[list[str], list[str], list[dict | None]]:
    """Check texts, ids (str or int; new UUIDs when None) and metadata, one of each per document."""
    texts = validate_texts(texts)
    for row, text in enumerate(texts):
        if not text.strip():
            raise ValueError(f"texts[{row}] is empty")
    ids = [str(uuid.uuid4()) for _ in texts] if ids is None else validate_ids(ids)
    if metadata is not None and (isinstance(metadata, (str, bytes, dict)) or not isinstance(metadata, Iterable)):
        raise TypeError(f"metadata must be a list of dicts (one per document) or None, got {type(metadata).__name__}")
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
        metadata[row] = _json_value(meta, f"metadata[{row}]")
        quoted = next((key for key in metadata[row] or {} if '"' in key), None)
        if quoted is not None:  # a filter could not address it (SQLite's JSON paths cannot quote it)
            raise ValueError(f"metadata[{row}] has the key {quoted!r}; metadata keys cannot contain a double quote")
    return texts, ids, metadata


def _json_value(value: object, where: str) -> object:
    """``value`` with numpy scalars and arrays as Python values, or an error naming where a value JSON
    cannot store sits (NaN and infinity included: SQLite's json functions reject them)."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} holds NaN or infinity, which JSON cannot store")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r} ({type(key).__name__}); metadata keys must be str")
        return {key: _json_value(item, f"{where}[{key!r}]") for key, item in value.items()}
    raise TypeError(f"{where} is a {type(value).__name__} ({value!r}), which JSON cannot store")


def plan_documents(
    texts: list[str],
    ids: list[str],
    metadata: list[dict | None],
    tokenizer: Tokenizer,
    chunk_size: int | None,
    chunk_overlap: int,
) -> list[PlannedDocument]:
    """Chunk each document and hash its chunks (``stored`` is filled in by the write, under its lock)."""
    plan = []
    if chunk_size is not None:
        tokenizer = untruncated(tokenizer)  # a no-op for a copy the index keeps
    for doc_id, text, meta in zip(ids, texts, metadata, strict=True):
        chunks = chunk_text(text, tokenizer, chunk_size, chunk_overlap)
        hashes = [content_hash(text[c.start : c.end]) for c in chunks]
        plan.append(PlannedDocument(doc_id, text, meta or {}, chunks, hashes, None))
    return plan


def changes(
    plan: list[PlannedDocument], stored: Mapping[str, tuple[str, dict]]
) -> tuple[list[PlannedDocument], list[PlannedDocument]]:
    """``(rechunked, relabelled)``: the planned documents whose chunks are written (new ids, or a
    new text for a stored id) and those stored with the same text whose metadata changes; the
    documents stored as they are drop out. ``stored`` holds the (text, metadata) of stored ids."""
    rechunked, relabelled = [], []
    for document in plan:
        document = replace(document, stored=stored.get(document.id))
        if not document.unchanged:
            rechunked.append(document)
        elif document.metadata != document.stored[1]:
            relabelled.append(document)
    return rechunked, relabelled


def content_hash(text: str) -> str:
    """The embedding cache key of a chunk (the model is fixed per index)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def refuse_existing(existing: set[str]) -> None:
    """A ValueError naming (some of) ``existing`` ids, unless there are none: ``add`` never replaces."""
    if existing:
        raise ValueError(f"document id(s) {sorted(existing)[:5]} already exist; use upsert to replace them")
