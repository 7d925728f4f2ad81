"""The encode pipeline: tokenize on a background thread, batch by length (or token budget), run, collect.

Texts are tokenized in chunks by the Rust tokenizer on a worker thread (it releases the GIL),
so tokenization of chunk k+1 overlaps the model's work on chunk k. Within a chunk, texts are
sorted by token length, longest first, and cut into batches of at most ``batch_size`` texts
and ``max_tokens`` padded tokens. Embeddings stay on the device until a chunk is done.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sentsim.tokenization import TextTokenizer

CHUNK = 16384  # texts tokenized and length-sorted together
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Batch:
    rows: np.ndarray  # positions within the chunk
    input_ids: Tensor  # (B, L)
    attention_mask: Tensor  # (B, L)


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


def tokenized_chunks(
    texts: list[str], tokenizer: TextTokenizer, batch_size: int, max_tokens: int | None, pin_memory: bool
) -> Iterator[Chunk]:
    """Tokenized, padded batches of each chunk of ``texts`` (run on the worker thread)."""
    for start in range(0, len(texts), CHUNK):
        tokens = tokenizer.encode(texts[start : start + CHUNK])
        batches = []
        for rows in plan_batches(tokens.lengths, batch_size, max_tokens):
            input_ids, attention_mask = tokenizer.pad([tokens.ids[i] for i in rows])
            if pin_memory:
                input_ids, attention_mask = input_ids.pin_memory(), attention_mask.pin_memory()
            batches.append(Batch(rows, input_ids, attention_mask))
        yield Chunk(start, len(tokens.ids), batches, tokens.truncated)


def prefetched(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``items`` produced on a background thread, at most ``depth`` ahead."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put(item)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            buffer.put(_Failure(error))
        buffer.put(done)

    worker = threading.Thread(target=produce, name="sentsim-tokenize", daemon=True)
    worker.start()
    try:
        while (item := buffer.get()) is not done:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get(timeout=0.05)
            except queue.Empty:
                pass


@dataclass
class _Failure:
    error: BaseException


def autocast_dtype(dtype: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``dtype`` (``None``: bf16 on a CUDA GPU that supports it, else fp32)."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def run_chunks(
    chunks: Iterable[Chunk],
    embed: Callable[[Tensor, Tensor], Tensor],
    device: torch.device,
    dim: int,
    write: Callable[[int, Tensor], None],
    progress: Callable[[int], None],
    dtype: torch.dtype | None,
) -> int:
    """Embed every batch, gather each chunk on the device in input order, hand it to ``write``."""
    truncated = 0
    for chunk in chunks:
        out = torch.empty((chunk.size, dim), dtype=torch.float32, device=device)
        for batch in chunk.batches:
            input_ids = batch.input_ids.to(device, non_blocking=True)
            attention_mask = batch.attention_mask.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                embeddings = embed(input_ids, attention_mask)
            out[torch.from_numpy(batch.rows).to(device)] = embeddings.float()
            progress(len(batch.rows))
        write(chunk.start, out)
        truncated += chunk.truncated
    return truncated
