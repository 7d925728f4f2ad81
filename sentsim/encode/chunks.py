"""A corpus tokenized chunk by chunk: on the calling thread, or by a pool of tokenizer processes.

Chunks start small (``FIRST_CHUNK`` texts, doubling up to ``CHUNK``) so the model starts while
the rest is tokenized. For large corpora on a GPU, where one tokenizer thread cannot keep up
with the model, each chunk is spread over a small pool of processes (started on first use and
kept, for later calls with the same tokenizer, until that tokenizer is garbage-collected).
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
import weakref
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from tokenizers import Tokenizer

from sentsim.tokenization import TextTokenizer, TokenizedBatch

CHUNK = 16384  # texts tokenized and length-sorted together
FIRST_CHUNK = 1024  # the first chunks are smaller (doubling up to CHUNK), so the model starts sooner


def chunk_bounds(count: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each chunk of ``count`` texts: ``FIRST_CHUNK`` texts, then twice as many
    each time, up to ``CHUNK``."""
    start, size = 0, min(FIRST_CHUNK, CHUNK)
    while start < count:
        stop = min(start + size, count)
        yield start, stop
        start, size = stop, min(2 * size, CHUNK)


def tokenizer_workers(count: int) -> int:
    """Processes worth tokenizing ``count`` texts with on this machine (0: one thread is enough)."""
    cores = os.cpu_count() or 1
    if count < 4 * CHUNK or cores < 8:
        return 0
    return min(8, cores // 2, count // CHUNK)


def tokenized(texts: list[str], tokenizer: TextTokenizer, workers: int) -> Iterator[tuple[int, TokenizedBatch]]:
    """``(start, tokens)`` of each chunk of ``texts``, in order; with processes, at most 3 chunks in flight."""
    bounds = chunk_bounds(len(texts))
    if workers <= 1:
        for start, stop in bounds:
            yield start, tokenizer.encode(texts[start:stop])
        return
    pool = worker_pool(tokenizer, workers)
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


def _joined(start: int, parts: list[Future]) -> tuple[int, TokenizedBatch]:
    return start, TokenizedBatch.concatenate([future.result() for future in parts])


_pools: dict[tuple[int, int], ProcessPoolExecutor] = {}


def worker_pool(tokenizer: TextTokenizer, workers: int) -> ProcessPoolExecutor:
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
