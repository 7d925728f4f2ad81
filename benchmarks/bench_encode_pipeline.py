"""Where encode's time goes: the batch producer (tokenize + pack) and the GPU consumer, apart.

    python benchmarks/bench_encode_pipeline.py --device cuda

For ``--n`` short STS-B sentences (and ``--n-long`` texts of 8 sentences), each figure the best
of two runs after a warm-up (tokenizer processes already started):

- the tokenizer: Rust ``encode_batch_fast`` on all cores, ``TextTokenizer.encode`` (+ ids to
  flat arrays), and one tokenizer process alone (one thread);
- the producer (``tokenized_chunks``: tokenize, pack, pin) with 0 (one thread), 4, 8, 12 and 14
  tokenizer processes, and its latency to the first chunk;
- the consumer alone on pre-built batches (``run_chunks``), per packed token budget;
- on CUDA, overlap: calls in the consumer that wait for the GPU, the consumer's rate while a thread runs each part of the producer in a loop
  (Rust tokenizer, conversion to arrays, pinning), and producer + consumer with and without
  pinned memory;
- ``encode`` end to end, per number of tokenizer processes and first-chunk size.

End to end would run at the slower of producer and consumer if the two overlapped fully; on an
H200 it ran near the harmonic sum of the two (``results/h200/``), which the overlap figures are
there to explain. ``RAYON_NUM_THREADS=N`` before the command caps the Rust tokenizer's threads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, best_time, long_texts, machine, stsb_sentences  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.encode import batches, pipeline  # noqa: E402
from sentsim.encode import chunks as chunking  # noqa: E402
from sentsim.encode.precision import autocast_dtype  # noqa: E402
from sentsim.towers.packed import use_packing  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--n-long", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4, 8, 12, 14], help="tokenizer processes")
    parser.add_argument("--first-chunks", type=int, nargs="+", default=[chunking.CHUNK, chunking.FIRST_CHUNK])
    parser.add_argument("--budgets", type=int, nargs="+", default=[32768, 65536, 131072], help="packed tokens")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    encoder = SentenceEncoder.from_pretrained(args.model, device=args.device)
    device, sentences = encoder.device, stsb_sentences(args.data_dir)
    sets = {
        "short": _cycled(sentences, args.n),
        "long": _cycled(long_texts(sentences, len(sentences) // 8), args.n_long),
    }
    texts = sets["short"]
    tokenizer, on_gpu = encoder.tower.tokenizer, device.type == "cuda"
    dtype = autocast_dtype(None, device)
    packed = use_packing(encoder.tower, None, device, dtype)
    encoder.encode(texts[:20000], show_progress=False)  # warm-up
    figures: dict = {"machine": machine(), "cpus": os.cpu_count(), "packed": packed, "n": args.n}
    rayon = os.environ.get("RAYON_NUM_THREADS", "all cores")
    print(f"# encode pipeline, {args.n} short texts, packed={packed}; {machine()}, {os.cpu_count()} CPUs", flush=True)
    print(f"# Rust tokenizer threads (RAYON_NUM_THREADS): {rayon}", flush=True)
    figures["rayon_threads"] = rayon

    raw = tokenizer.tokenizer
    figures["rust_all_cores"] = _rate("Rust encode_batch_fast, all cores", texts, lambda: raw.encode_batch_fast(texts))
    figures["text_tokenizer"] = _rate("TextTokenizer.encode (+ flat arrays)", texts, lambda: tokenizer.encode(texts))
    pool = chunking.worker_pool(tokenizer, 1)
    sample = texts[:16384]
    figures["one_process"] = len(sample) / min(pool.submit(_time_in_worker, sample).result() for _ in range(3))
    print(f"one tokenizer process (one thread): {figures['one_process']:.0f} texts/s", flush=True)

    figures["producer"] = []
    for workers in args.workers:

        def produce(w=workers) -> list:
            return list(
                batches.tokenized_chunks(texts, tokenizer, 64, None, packed=packed, pin_memory=on_gpu, workers=w)
            )

        produce()  # starts the processes
        rate = _rate(f"producer, {workers} tokenizer processes", texts, produce)
        start, chunks = (
            time.perf_counter(),
            batches.tokenized_chunks(texts, tokenizer, 64, None, packed=packed, pin_memory=on_gpu, workers=workers),
        )
        next(chunks)
        latency = time.perf_counter() - start
        chunks.close()
        print(f"  first chunk ready after {1000 * latency:.1f} ms", flush=True)
        figures["producer"].append({"workers": workers, "texts_per_s": rate, "first_chunk_ms": 1000 * latency})

    def embed(batch):
        return encoder.embed(batch, normalize=True)

    figures["consumer"] = []
    for budget in args.budgets if packed else [None]:
        chunks = list(batches.tokenized_chunks(texts, tokenizer, 64, budget, packed=packed, pin_memory=on_gpu))

        def consume(chunks=chunks) -> None:
            with torch.inference_mode():
                pipeline.run_chunks(
                    chunks, embed, device, encoder.dim, lambda start, block: None, lambda n: None, dtype
                )

        consume()
        rate = _rate(f"consumer alone (pre-built batches), token budget {budget}", texts, consume)
        figures["consumer"].append({"budget": budget, "texts_per_s": rate})
        del chunks

    if on_gpu:
        figures["overlap"] = _overlap(encoder, texts, packed, embed, dtype)

    figures["end_to_end"] = []
    automatic, first = pipeline.tokenizer_workers, chunking.FIRST_CHUNK
    try:
        for name, items in sets.items():
            for first_chunk in args.first_chunks:
                for workers in args.workers:
                    chunking.FIRST_CHUNK = first_chunk
                    pipeline.tokenizer_workers = lambda count, w=workers: w
                    encoder.encode(items, show_progress=False)
                    rate = _rate(
                        f"encode end to end, {name}, {workers} processes, first chunk {first_chunk}",
                        items,
                        lambda items=items: encoder.encode(items, show_progress=False),
                    )
                    figures["end_to_end"].append(
                        {"texts": name, "workers": workers, "first_chunk": first_chunk, "texts_per_s": rate}
                    )
    finally:
        pipeline.tokenizer_workers, chunking.FIRST_CHUNK = automatic, first
    for name, items in sets.items():
        figures[f"default_{name}"] = _rate(
            f"encode end to end, {name}, defaults ({automatic(len(items))} processes)",
            items,
            lambda items=items: encoder.encode(items, show_progress=False),
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _overlap(encoder: SentenceEncoder, texts: list[str], packed: bool, embed, dtype) -> dict:
    """Does the model run at full speed while the host works beside it? The consumer's rate on
    pre-built batches while a thread runs each part of the producer in a loop, and the producer
    + consumer with and without pinned memory; each at Python's GIL switch interval and at 0.5 ms."""
    tokenizer, device, sample = encoder.tower.tokenizer, encoder.device, texts[:16384]
    plain = list(batches.tokenized_chunks(texts, tokenizer, 64, None, packed=packed))
    pinned = [batches.Chunk(c.start, c.size, [b.apply(torch.Tensor.pin_memory) for b in c.batches], 0) for c in plain]

    def consume(chunks) -> None:
        pipeline.run_chunks(chunks, embed, device, encoder.dim, lambda start, block: None, lambda n: None, dtype)

    loads = {
        "nothing": None,
        "Rust encode_batch_fast": lambda: tokenizer.tokenizer.encode_batch_fast(sample),
        "TextTokenizer.encode": lambda: tokenizer.encode(sample),
        "pin_memory of fresh batches": lambda: [b.apply(torch.Tensor.pin_memory) for c in plain for b in c.batches],
    }
    figures = {}
    with torch.inference_mode():
        consume(pinned)
        torch.cuda.set_sync_debug_mode("warn")  # a call that waits for the GPU holds the GIL meanwhile
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                consume(pinned)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        syncs = sorted({str(warning.message).splitlines()[0] for warning in caught})
        figures["synchronizing_calls"] = {"count": len(caught), "kinds": syncs}
        print(f"calls that wait for the GPU in the consumer: {len(caught)} {syncs[:3]}", flush=True)
        default_interval = sys.getswitchinterval()
        for interval in (default_interval, 0.0005):  # how long a thread may hold the GIL while another waits
            sys.setswitchinterval(interval)
            try:
                for name, load in loads.items():
                    with _looping(load) as done:
                        rate = _rate(
                            f"consumer on pinned batches while a thread runs {name} (GIL switch {1000 * interval} ms)",
                            texts,
                            lambda: consume(pinned),
                        )
                    figures[f"{name}, switch {interval}"] = {"consumer_texts_per_s": rate, "load_runs_per_s": done()}
                    if load is not None:
                        print(f"  ({done():.1f} runs/s of the load meanwhile)", flush=True)
                for pin in (True, False):
                    rate = _rate(
                        f"producer thread + consumer, pin_memory={pin} (GIL switch {1000 * interval} ms)",
                        texts,
                        lambda pin=pin: consume(
                            pipeline.prefetched(
                                batches.tokenized_chunks(texts, tokenizer, 64, None, packed=packed, pin_memory=pin)
                            )
                        ),
                    )
                    figures[f"pipeline_pin_{pin}, switch {interval}"] = rate
            finally:
                sys.setswitchinterval(default_interval)
    return figures


@contextmanager
def _looping(run):
    """Run ``run`` in a loop on a thread while the block runs; yields a function giving runs/s."""
    stop, count, start = threading.Event(), [0], time.perf_counter()

    def loop() -> None:
        while run is not None and not stop.is_set():
            run()
            count[0] += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield lambda: count[0] / (time.perf_counter() - start)
    finally:
        stop.set()
        thread.join()


def _time_in_worker(texts: list[str]) -> float:
    """Seconds one tokenizer process takes for ``texts`` (run inside the process)."""
    start = time.perf_counter()
    chunking._encode_in_worker(texts)
    return time.perf_counter() - start


def _cycled(texts: list[str], count: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(count)]


def _rate(what: str, texts: list[str], run) -> float:
    rate = len(texts) / best_time(run, 2)
    print(f"{what}: {rate:.0f} texts/s", flush=True)
    return rate


if __name__ == "__main__":
    main()
