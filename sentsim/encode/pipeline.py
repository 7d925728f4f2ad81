"""The encode pipeline: tokenize on a background thread, run batches on each device, collect in order.

Chunks of texts are tokenized and batched on a worker thread (the Rust tokenizer releases the
GIL), so tokenization of chunk k+1 overlaps the model's work on chunk k. Each device's runner
takes the next chunk whenever it is free; embeddings stay on the device until a chunk is done,
then go to the output (a tensor, or a ``.npy`` file streamed to disk).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from sentsim.encode.batches import Batch, Chunk, PackedBatch, batched, tokenized_chunks
from sentsim.encode.chunks import tokenizer_workers
from sentsim.encode.devices import DeviceRunner
from sentsim.encode.outputs import NpyOutput, TensorOutput
from sentsim.encode.runtimes import Runtime
from sentsim.tokenization import TextTokenizer, TokenizedBatch


@dataclass(frozen=True)
class EncodePlan:
    """How to encode: validated settings and the runner of each device (the model's own first)."""

    runners: list[DeviceRunner]
    runtime: Runtime
    autocast: torch.dtype | None
    int8: bool
    packed: bool
    normalize: bool
    batch_size: int
    max_tokens: int | None
    show_progress: bool
    dim: int  # of the embeddings: the model's, or a truncation of it


def run(
    plan: EncodePlan,
    texts: list[str] | TokenizedBatch,
    tokenizer: TextTokenizer,
    output: str | Path | None = None,
) -> tuple[Tensor | np.memmap, int]:
    """Embeddings of ``texts`` (or of texts tokenized already) as a float32 ``(n, dim)`` tensor on
    the first device, or the memory map of the finished ``output`` file; and how many texts were
    truncated. On any error an existing ``output`` file is left as it was."""
    device, dim = plan.runners[0].device, plan.dim
    sink = NpyOutput(output, len(texts), dim) if output is not None else TensorOutput(len(texts), dim, device)
    try:
        on_gpu = device.type == "cuda"
        settings = {"packed": plan.packed, "pin_memory": on_gpu}
        if isinstance(texts, TokenizedBatch):
            chunks = batched([(0, texts)], tokenizer, plan.batch_size, plan.max_tokens, **settings)
        else:
            workers = tokenizer_workers(len(texts)) if on_gpu else 0  # on CPU, the cores are the model's
            chunks = tokenized_chunks(texts, tokenizer, plan.batch_size, plan.max_tokens, workers=workers, **settings)
        embedders = [
            runner.embedder(plan.runtime, packed=plan.packed, normalize=plan.normalize, int8=plan.int8, dim=dim)
            for runner in plan.runners
        ]
        devices = [runner.device for runner in plan.runners]
        with tqdm(total=len(texts), desc="encode", unit="text", disable=not plan.show_progress) as bar:
            if not isinstance(texts, TokenizedBatch):  # tokenization overlaps the model's work
                chunks = prefetched(chunks, depth=2 * len(devices))
            if len(devices) == 1:
                truncated = run_chunks(chunks, embedders[0], device, dim, sink.write, bar.update, plan.autocast)
            else:
                truncated = run_on_devices(chunks, embedders, devices, dim, sink.write, bar.update, plan.autocast)
        return sink.finish(), truncated
    except BaseException:
        sink.discard()  # an existing file at output stays as it was; nothing new is left
        raise


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

    def run_device(embed: Callable[[Batch], Tensor], device: torch.device) -> int:
        try:
            with torch.inference_mode(), torch.cuda.device(device) if device.type == "cuda" else nullcontext():
                return run_chunks(next_chunks(), embed, device, dim, write, locked_progress, dtype)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(len(devices), thread_name_prefix="sentsim-device") as pool:
        futures = [pool.submit(run_device, embed, device) for embed, device in zip(embeds, devices, strict=True)]
        return sum(future.result() for future in futures)
