"""Token-aware chunking: split long documents into overlapping windows with character offsets."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer


@dataclass(frozen=True)
class Chunk:
    start: int  # character offsets into the document: text[start:end]
    end: int


def chunk_text(text: str, tokenizer: Tokenizer, chunk_size: int | None, overlap: int = 0) -> list[Chunk]:
    """Windows of at most ``chunk_size`` tokens, each sharing ``overlap`` tokens with the previous one.

    ``chunk_size=None`` keeps the whole document as one chunk. Offsets come from the
    tokenizer, so a chunk never cuts a word piece in half; whitespace between windows is
    left out. A text without tokens is one chunk.
    """
    if chunk_size is None:
        return [Chunk(0, len(text))]
    if chunk_size < 1 or not 0 <= overlap < chunk_size:
        raise ValueError(f"need chunk_size >= 1 and 0 <= overlap < chunk_size, got {chunk_size} and {overlap}")
    encoding = tokenizer.encode(text, add_special_tokens=False)
    offsets = [span for span in encoding.offsets if span[1] > span[0]]
    if len(offsets) <= chunk_size:
        return [Chunk(0, len(text))]
    chunks, step = [], chunk_size - overlap
    for first in range(0, len(offsets), step):
        window = offsets[first : first + chunk_size]
        chunks.append(Chunk(window[0][0], window[-1][1]))
        if first + chunk_size >= len(offsets):
            break
    return chunks
