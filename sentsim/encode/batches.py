"""Batches of tokenized texts, padded or packed, planned chunk by chunk.

- padded: within a chunk, texts are sorted by token length, longest first, and cut into
  batches of at most ``batch_size`` texts and ``max_tokens`` padded tokens;
- packed: consecutive texts laid end to end, at most ``max_tokens`` tokens a batch, with no
  padding at all (for towers with a packed forward, see ``sentsim.towers.packed``).

Host tensors are pinned for CUDA so that copies overlap the model's work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sentsim.encode.chunks import tokenized
from sentsim.tokenization import TextTokenizer, TokenizedBatch
from sentsim.towers.packed import PackedLayout

PACKED_TOKENS = 65536  # default token budget of a packed batch


@dataclass
class PaddedBatch:
    rows: np.ndarray  # positions within the chunk
    input_ids: Tensor  # (B, L)
    attention_mask: Tensor  # (B, L)

    def apply(self, function: Callable[[Tensor], Tensor]) -> PaddedBatch:
        return PaddedBatch(self.rows, function(self.input_ids), function(self.attention_mask))


@dataclass
class PackedBatch:
    rows: slice  # positions within the chunk
    input_ids: Tensor  # (T,)
    cu_seqlens: Tensor  # (N+1,) int32: where each text starts, then T
    max_length: int  # tokens in the longest text

    def apply(self, function: Callable[[Tensor], Tensor]) -> PackedBatch:
        return PackedBatch(self.rows, function(self.input_ids), function(self.cu_seqlens), self.max_length)

    @property
    def layout(self) -> PackedLayout:
        """Token positions and text ids, computed where the batch is: a third of the bytes to pin and copy."""
        return PackedLayout.from_offsets(self.cu_seqlens, self.max_length, len(self.input_ids))


Batch = PaddedBatch | PackedBatch


@dataclass
class Chunk:
    start: int
    size: int
    batches: list[Batch]
    truncated: int


def plan_batches(lengths: np.ndarray, batch_size: int, max_tokens: int | None) -> list[np.ndarray]:
    """Row indices of each batch: longest texts first, at most ``batch_size`` texts and
    ``max_tokens`` padded tokens (``rows * longest``) a batch."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = batch_size
        if max_tokens is not None:
            size = max(1, min(batch_size, max_tokens // max(int(lengths[order[start]]), 1)))
        batches.append(order[start : start + size])
        start += size
    return batches


def plan_packed(lengths: np.ndarray, max_tokens: int) -> list[slice]:
    """Runs of consecutive texts with at most ``max_tokens`` tokens in all (at least one text each)."""
    ends = np.cumsum(lengths)
    batches, start = [], 0
    while start < len(lengths):
        budget = (ends[start - 1] if start else 0) + max_tokens
        stop = max(start + 1, int(np.searchsorted(ends, budget, side="right")))
        batches.append(slice(start, stop))
        start = stop
    return batches


def tokenized_chunks(
    texts: list[str],
    tokenizer: TextTokenizer,
    batch_size: int,
    max_tokens: int | None,
    *,
    packed: bool = False,
    pin_memory: bool = False,
    workers: int = 0,
) -> Iterator[Chunk]:
    """Tokenized batches (padded, or packed) of each chunk of ``texts`` (run on the worker thread).

    With ``workers > 1``, chunks are tokenized by that many processes (for corpora large enough
    that one tokenizer thread cannot keep a GPU busy).
    """
    parts = tokenized(texts, tokenizer, workers)
    return batched(parts, tokenizer, batch_size, max_tokens, packed=packed, pin_memory=pin_memory)


def batched(
    parts: Iterable[tuple[int, TokenizedBatch]],
    tokenizer: TextTokenizer,
    batch_size: int,
    max_tokens: int | None,
    *,
    packed: bool = False,
    pin_memory: bool = False,
) -> Iterator[Chunk]:
    """Each ``(start, tokens)`` part as a chunk of padded (or packed) batches."""
    for start, tokens in parts:
        if packed:
            batches = [packed_batch(tokens, rows) for rows in plan_packed(tokens.lengths, max_tokens or PACKED_TOKENS)]
        else:
            plan = plan_batches(tokens.lengths, batch_size, max_tokens)
            batches = [PaddedBatch(rows, *tokenizer.pad(tokens.take(rows))) for rows in plan]
        if pin_memory:
            batches = [batch.apply(Tensor.pin_memory) for batch in batches]
        yield Chunk(start, len(tokens), batches, tokens.truncated)


def packed_batch(tokens: TokenizedBatch, rows: slice) -> PackedBatch:
    """The texts ``rows`` of ``tokens`` laid end to end, with their offsets."""
    part = tokens.take(rows)
    cu_seqlens = np.zeros(len(part) + 1, dtype=np.int32)
    np.cumsum(part.lengths, out=cu_seqlens[1:])
    return PackedBatch(rows, torch.from_numpy(part.flat_ids), torch.from_numpy(cu_seqlens), int(part.lengths.max()))
