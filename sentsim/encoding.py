"""The encode pipeline: tokenize on a background thread, batch by length (or token budget), run, collect.

Texts are tokenized in chunks by the Rust tokenizer on a worker thread (it releases the GIL),
so tokenization of chunk k+1 overlaps the model's work on chunk k. Two kinds of batches:

- padded: within a chunk, texts are sorted by token length, longest first, and cut into
  batches of at most ``batch_size`` texts and ``max_tokens`` padded tokens;
- packed: consecutive texts laid end to end, at most ``max_tokens`` tokens a batch, with no
  padding at all (for towers with a packed forward, see ``sentsim.towers.packed``).

For large corpora on a GPU, where one tokenizer thread cannot keep up with the model, chunks
are tokenized by a small pool of processes instead (started on first use and kept for later
calls with the same tokenizer). Host tensors are pinned on CUDA so copies
overlap; embeddings stay on the device until a chunk is done.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor

from sentsim.tokenization import TextTokenizer, TokenizedBatch
from sentsim.towers.packed import PackedLayout

CHUNK = 16384  # texts tokenized and length-sorted together
FIRST_CHUNK = 1024  # the first chunks are smaller (doubling up to CHUNK), so the model starts sooner
PACKED_TOKENS = 65536  # default token budget of a packed batch
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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
    for start, tokens in _tokenized(texts, tokenizer, workers):
        if packed:
            batches = [_packed_batch(tokens, rows) for rows in plan_packed(tokens.lengths, max_tokens or PACKED_TOKENS)]
        else:
            plan = plan_batches(tokens.lengths, batch_size, max_tokens)
            batches = [PaddedBatch(rows, *tokenizer.pad(tokens.take(rows))) for rows in plan]
        if pin_memory:
            batches = [batch.apply(Tensor.pin_memory) for batch in batches]
        yield Chunk(start, len(tokens), batches, tokens.truncated)


def _tokenized(texts: list[str], tokenizer: TextTokenizer, workers: int) -> Iterator[tuple[int, TokenizedBatch]]:
    """``(start, tokens)`` of each chunk of ``texts``, in order; with processes, at most 3 chunks in flight."""
    bounds = chunk_bounds(len(texts))
    if workers <= 1:
        for start, stop in bounds:
            yield start, tokenizer.encode(texts[start:stop])
        return
    pool = _worker_pool(tokenizer, workers)
    pending: deque = deque()  # (start, futures of the chunk's parts)
    try:
        for start, stop in bounds:
            part = -(-(stop - start) // workers)  # each chunk is spread over every worker
            parts = [pool.submit(_encode_in_worker, texts[i : min(i + part, stop)]) for i in range(start, stop, part)]
            pending.append((start, parts))
            if len(pending) > 2:  # two chunks in flight
                yield _joined(*pending.popleft())
        while pending:
            yield _joined(*pending.popleft())
    except BrokenProcessPool:
        _pools.pop((id(tokenizer), workers), None)
        raise
    finally:
        for _, parts in pending:
            for future in parts:
                future.cancel()


def chunk_bounds(count: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each chunk of ``count`` texts: ``FIRST_CHUNK`` texts, then twice as many
    each time, up to ``CHUNK`` (a small first chunk lets the model start while the rest is tokenized)."""
    start, size = 0, min(FIRST_CHUNK, CHUNK)
    while start < count:
        stop = min(start + size, count)
        yield start, stop
        start, size = stop, min(2 * size, CHUNK)


def _joined(start: int, parts: list[Future]) -> tuple[int, TokenizedBatch]:
    return start, TokenizedBatch.concatenate([future.result() for future in parts])


_pools: dict[tuple[int, int], ProcessPoolExecutor] = {}


def _worker_pool(tokenizer: TextTokenizer, workers: int) -> ProcessPoolExecutor:
    """Tokenizer processes for ``tokenizer``, started once and kept until the tokenizer is garbage-collected."""
    key = (id(tokenizer), workers)
    if key not in _pools:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        state = (tokenizer.tokenizer.to_str(), tokenizer.max_length, tokenizer.lowercase)  # not the object: it
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=state)  # must die
        with warnings.catch_warnings():  # fork in a multi-threaded process: the children only run the Rust tokenizer
            warnings.simplefilter("ignore", DeprecationWarning)
            pool.submit(os.getpid).result()  # start the processes now
        _pools[key] = pool
        weakref.finalize(tokenizer, _close_pool, key)
    return _pools[key]


def _close_pool(key: tuple[int, int]) -> None:
    pool = _pools.pop(key, None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


_worker_tokenizer: TextTokenizer | None = None


def _start_worker(tokenizer_json: str, max_length: int, lowercase: bool) -> None:
    global _worker_tokenizer
    # A forked child must not use the Rust thread pool it inherited (it deadlocks); one thread a process.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker_tokenizer = TextTokenizer(Tokenizer.from_str(tokenizer_json), max_length, lowercase=lowercase)


def _encode_in_worker(texts: list[str]) -> TokenizedBatch:
    return _worker_tokenizer.encode(texts)


def tokenizer_workers(count: int) -> int:
    """Processes worth tokenizing ``count`` texts with on this machine (0: one thread is enough)."""
    cores = os.cpu_count() or 1
    if count < 4 * CHUNK or cores < 8:
        return 0
    return min(8, cores // 2, count // CHUNK)


def _packed_batch(tokens: TokenizedBatch, rows: slice) -> PackedBatch:
    part = tokens.take(rows)
    cu_seqlens = np.zeros(len(part) + 1, dtype=np.int32)
    np.cumsum(part.lengths, out=cu_seqlens[1:])
    return PackedBatch(rows, torch.from_numpy(part.flat_ids), torch.from_numpy(cu_seqlens), int(part.lengths.max()))


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
    embed: Callable[[Batch], Tensor],
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
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                embeddings = embed(batch.apply(lambda tensor: tensor.to(device, non_blocking=True)))
            if isinstance(batch, PackedBatch):
                out[batch.rows] = embeddings.float()
                progress(batch.rows.stop - batch.rows.start)
            else:
                out[torch.from_numpy(batch.rows).to(device)] = embeddings.float()
                progress(len(batch.rows))
        write(chunk.start, out)
        truncated += chunk.truncated
    return truncated


def run_on_devices(
    chunks: Iterable[Chunk],
    embeds: list[Callable[[Batch], Tensor]],
    devices: list[torch.device],
    dim: int,
    write: Callable[[int, Tensor], None],
    progress: Callable[[int], None],
    dtype: torch.dtype | None,
) -> int:
    """:func:`run_chunks` on several devices at once: one thread per device (each with its own
    model replica in ``embeds``) takes the next chunk whenever it is free."""
    source, lock, failed = iter(chunks), threading.Lock(), threading.Event()

    def next_chunks() -> Iterator[Chunk]:
        while not failed.is_set():
            with lock:
                chunk = next(source, None)
            if chunk is None:
                return
            yield chunk

    def locked_progress(count: int) -> None:
        with lock:
            progress(count)

    def run(embed: Callable[[Batch], Tensor], device: torch.device) -> int:
        try:
            with torch.inference_mode(), torch.cuda.device(device) if device.type == "cuda" else nullcontext():
                return run_chunks(next_chunks(), embed, device, dim, write, locked_progress, dtype)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(len(devices), thread_name_prefix="sentsim-device") as pool:
        futures = [pool.submit(run, embed, device) for embed, device in zip(embeds, devices, strict=True)]
        return sum(future.result() for future in futures)
