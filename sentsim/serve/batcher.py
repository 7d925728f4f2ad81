"""Dynamic batching: requests queue their tokenized texts; one model worker runs them in large batches.

Handlers tokenize their texts (so token counts are exact) and await :meth:`Batcher.embed`. One
worker thread takes queued requests first-in-first-out up to a token budget, runs them through
the library's encode path in one call (``SentenceEncoder.embed_tokens``), and hands each request
its rows. One worker per model means concurrent requests never oversubscribe the CPU threads.
A request whose client went away is skipped; past ``max_queue_tokens`` a new request is refused
(:class:`Overloaded`, a 429 for the server).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sentsim.serve.metrics import Metrics
from sentsim.tokenization import TokenizedBatch

logger = logging.getLogger(__name__)


class Overloaded(Exception):
    """The queue holds more tokens than the server takes on: try again later."""


@dataclass
class _Job:
    tokens: TokenizedBatch | None  # None for a call
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    call: Callable[[], object] | None = None  # run alone on the worker thread (an index write)
    queued_at: float = field(default_factory=time.perf_counter)
    abandoned: bool = False

    @property
    def size(self) -> int:
        return int(self.tokens.lengths.sum()) if self.tokens is not None else 0


class Batcher:
    """The one worker that runs a model for every request.

    Args:
        encoder: a ``SentenceEncoder`` (on its device, with its packing default).
        max_batch_tokens: tokens per model call at most (one request larger than that runs alone).
        max_queue_tokens: queued tokens beyond which new requests are refused.
        metrics: where queue size, batch sizes and durations are recorded.
        dtype, runtime: as :meth:`SentenceEncoder.encode`'s.
    """

    def __init__(
        self,
        encoder,
        *,
        max_batch_tokens: int,
        max_queue_tokens: int,
        metrics: Metrics,
        dtype: str | None = None,
        runtime: str = "torch",
    ) -> None:
        self.encoder, self.metrics, self.dtype, self.runtime = encoder, metrics, dtype, runtime
        self.max_batch_tokens, self.max_queue_tokens = max_batch_tokens, max_queue_tokens
        self._queue: deque[_Job] = deque()
        self._queued_tokens = 0
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="sentsim-batcher", daemon=True)
        self._thread.start()

    async def embed(self, tokens: TokenizedBatch) -> np.ndarray:
        """Float32 embeddings ``(n, dim)`` of ``tokens``, computed in a batch with other requests."""
        loop = asyncio.get_running_loop()
        return await self._submit(_Job(tokens, loop.create_future(), loop))

    async def call(self, function: Callable, *args: object) -> object:
        """``function(*args)``, run on the worker thread between two batches (in queue order)."""
        loop = asyncio.get_running_loop()
        return await self._submit(_Job(None, loop.create_future(), loop, call=lambda: function(*args)))

    async def _submit(self, job: _Job) -> object:
        with self._condition:
            if self._stopping:
                raise Overloaded("the server is shutting down")
            if self._queue and self._queued_tokens + job.size > self.max_queue_tokens:
                raise Overloaded(f"{self._queued_tokens} tokens are queued already")
            self._queue.append(job)
            self._queued_tokens += job.size
            self.metrics.queue_tokens.set(self._queued_tokens)
            self._condition.notify()
        try:
            return await job.future
        except asyncio.CancelledError:  # the client went away: the worker skips the job
            job.abandoned = True
            raise

    def close(self) -> None:
        """Finish the queued requests, then stop the worker."""
        with self._condition:
            self._stopping = True
            self._condition.notify()
        self._thread.join()

    def _next_batch(self) -> list[_Job] | None:
        """Queued jobs, first in first out, up to the token budget (at least one); None to stop."""
        with self._condition:
            while not self._queue and not self._stopping:
                self._condition.wait()
            jobs, tokens = [], 0
            if self._queue and self._queue[0].call is not None:
                job = self._queue.popleft()
                self.metrics.queue_tokens.set(self._queued_tokens)
                return [job]
            while (
                self._queue
                and self._queue[0].call is None
                and (not jobs or tokens + self._queue[0].size <= self.max_batch_tokens)
            ):
                job = self._queue.popleft()
                self._queued_tokens -= job.size
                if not job.abandoned:
                    jobs.append(job)
                    tokens += job.size
            self.metrics.queue_tokens.set(self._queued_tokens)
            if not jobs and self._stopping and not self._queue:
                return None
            return jobs

    def _work(self) -> None:
        while (jobs := self._next_batch()) is not None:
            if jobs:
                self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        if jobs[0].call is not None:
            job = jobs[0]
            try:
                result, error = job.call(), None
            except Exception as failure:  # noqa: BLE001 - handed to the caller
                result, error = None, failure
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            return
        started = time.perf_counter()
        for job in jobs:
            self.metrics.queue_seconds.observe(started - job.queued_at)
        tokens = TokenizedBatch.concatenate([job.tokens for job in jobs])
        try:
            embeddings = self.encoder.embed_tokens(tokens, batch_size=64, dtype=self.dtype, runtime=self.runtime)
            embeddings = embeddings.cpu().numpy()  # (n, dim)
        except Exception as error:  # noqa: BLE001 - handed to every request of the batch
            logger.exception("a batch of %d texts failed", len(tokens))
            for job in jobs:
                job.loop.call_soon_threadsafe(_settle, job.future, None, error)
            return
        self.metrics.batch_texts.observe(len(tokens))
        self.metrics.batch_tokens.observe(int(tokens.lengths.sum()))
        self.metrics.inference_seconds.observe(time.perf_counter() - started)
        start = 0
        for job in jobs:
            rows = embeddings[start : start + len(job.tokens)]
            start += len(job.tokens)
            job.loop.call_soon_threadsafe(_settle, job.future, rows, None)


def _settle(future: asyncio.Future, result: object, error: BaseException | None) -> None:
    if future.done():  # cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
