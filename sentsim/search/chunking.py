"""Token-aware chunking: split long documents into overlapping windows with character offsets."""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Tokenizer

from sentsim.tokenization import untruncated
from sentsim.validation import check_int

DEFAULT_CHUNK_OVERLAP = 32  # tokens, and at most a quarter of chunk_size


@dataclass(frozen=True)
class Chunk:
    start: int  # character offsets into the document: text[start:end]
    end: int


def chunk_text(text: str, tokenizer: Tokenizer, chunk_size: int | None, overlap: int = 0) -> list[Chunk]:
    """Windows of at most ``chunk_size`` tokens, each sharing ``overlap`` tokens with the previous one.

    ``chunk_size=None`` keeps the whole document as one chunk. Offsets come from the
    tokenizer, so a chunk never cuts a word piece in half; whitespace between windows is
    left out. A text without tokens is one chunk. The windows cover the whole text, however
    long: a tokenizer that truncates is used through an untruncated copy (pass one made by
    :func:`untruncated` to chunk many texts without copying it each time).
    """
    if chunk_size is None:
        return [Chunk(0, len(text))]
    if chunk_size < 1 or not 0 <= overlap < chunk_size:
        raise ValueError(f"need chunk_size >= 1 and 0 <= overlap < chunk_size, got {chunk_size} and {overlap}")
    encoding = untruncated(tokenizer).encode(text, add_special_tokens=False)
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


def chunk_options(chunk_size: object, chunk_overlap: object, encoder, prompt: str = "") -> tuple[int | None, int]:
    """``(chunk_size, chunk_overlap)`` of a new index, checked; without chunks the overlap is 0, and
    without an overlap it is 32 tokens, at most a quarter of ``chunk_size``. A chunk and the
    ``prompt`` before it must fit in what the model reads."""
    for option, value in (("chunk_size", chunk_size), ("chunk_overlap", chunk_overlap)):
        check_int(option, value, optional=True)
    if chunk_size is None:
        if chunk_overlap:  # it would be ignored (0, no overlap, says nothing)
            raise ValueError(f"chunk_overlap ({chunk_overlap}) needs chunk_size: documents are not split without it")
        return None, 0
    check_int("chunk_size", chunk_size, minimum=1)
    check_chunk_size(int(chunk_size), encoder, prompt)
    if chunk_overlap is None:
        chunk_overlap = min(DEFAULT_CHUNK_OVERLAP, int(chunk_size) // 4)
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"need 0 <= chunk_overlap < chunk_size, got {chunk_overlap} and {chunk_size}")
    return int(chunk_size), int(chunk_overlap)


def check_chunk_size(chunk_size: int, encoder, prompt: str = "") -> None:
    """Refuse chunks longer than the model reads after the special tokens and the prompt: each would be truncated."""
    tokenizer = untruncated(encoder.tower.tokenizer.tokenizer)
    specials = len(tokenizer.encode("", add_special_tokens=True).ids)
    prompt_tokens = len(tokenizer.encode(prompt, add_special_tokens=False).ids) if prompt else 0
    limit = encoder.max_seq_length - specials - prompt_tokens
    if chunk_size > limit:
        prompt_note = f" and {prompt_tokens} prompt tokens ({prompt!r})" if prompt_tokens else ""
        raise ValueError(
            f"chunk_size {chunk_size} is larger than the model reads: max_seq_length {encoder.max_seq_length} "
            f"less {specials} special tokens{prompt_note} is {limit}; longer chunks would be truncated"
        )
