"""Past one machine: encoding on Ray against plain ``encode``, and the Milvus store against FAISS.

    python benchmarks/bench_scale.py                        # both parts
    python benchmarks/bench_scale.py --part ray --n 4000    # Ray only, fewer texts

``--part ray``: the STS-B sentences (all 17,256 by default), embedded by all-MiniLM-L6-v2 on CPU:
``sentsim.distributed.encode_dataset`` on a local Ray runtime with 1 worker (1 torch thread) and 2
workers (1 thread each), reading the texts from a Parquet file as ``sentsim encode --engine ray``
does and collecting the embeddings in this process (the shards' writing is left out), each run
between two runs of plain ``encode`` with as many threads (other jobs' load drifts; the 1-minute
load average before each run is printed beside it). For Ray it
prints the runtime's start-up (once per command), each run's time to its first result (actors
started, model loaded, first task done), the steady state after that, and the whole run; the
overhead is the extra time per text against the mean of the two plain runs. On a 2-core machine
expect no speed-up: Ray's own processes share the cores.

``--part milvus``: ``benchmarks/scale_store.py`` (its ``main(argv)``, given the arguments this
script does not know), where that file exists.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine, stsb_sentences, timed  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402

RAY_CONFIGS = ((1, 1.0), (2, 0.5))  # (workers, CPUs reserved per worker): one torch thread each


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["ray", "milvus", "all"], default="all")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--n", type=int, default=None, help="texts (default: every STS-B sentence, 17,256)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path, help="also write the Ray part's figures here")
    args, rest = parser.parse_known_args(argv)
    if args.part in ("ray", "all"):
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)} (the Milvus part takes its own)")
        results = ray_part(args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.part in ("milvus", "all"):
        milvus_part(rest)


def ray_part(args: argparse.Namespace) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sentsim.distributed import encode_dataset, ray_runtime, read_dataset

    sentences = stsb_sentences(args.data_dir)
    texts = sentences[: args.n] if args.n else sentences
    results: dict = {"machine": machine(), "model": args.model, "texts": len(texts), "runs": []}
    print(f"# Ray encoding vs plain encode, {args.model}, {len(texts)} STS-B sentences, CPU; {machine()}")
    print("# each Ray run between two plain runs with as many torch threads; beside each, the 1-minute load average")
    encoder = SentenceEncoder.from_pretrained(args.model, device="cpu")
    encoder.encode(texts[:500], batch_size=args.batch_size, show_progress=False)  # warm-up

    def plain(threads: int) -> dict:
        torch.set_num_threads(threads)
        load = os.getloadavg()[0]
        seconds = timed(lambda: encoder.encode(texts, batch_size=args.batch_size, show_progress=False))
        print(f"plain encode, {threads} thread(s): {len(texts) / seconds:.0f} texts/s (load {load:.1f})", flush=True)
        return {"texts_per_s": len(texts) / seconds, "load_before": load}

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "texts.parquet"
        pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), source)
        started = time.perf_counter()
        with ray_runtime(None):
            results["ray_start_s"] = time.perf_counter() - started
            print(f"Ray local runtime start-up: {results['ray_start_s']:.1f} s", flush=True)
            import ray

            ray.data.DataContext.get_current().enable_progress_bars = False
            for workers, cpus in RAY_CONFIGS:  # one torch thread per worker
                before = plain(workers)
                run = ray_run(encode_dataset, read_dataset(source), args, workers, cpus, len(texts))
                after = plain(workers)
                reference = (before["texts_per_s"] + after["texts_per_s"]) / 2
                steady = run["steady_texts_per_s"]
                run |= {
                    "plain_before": before,
                    "plain_after": after,
                    "overhead_whole": reference / run["texts_per_s"] - 1,  # extra time per text
                    "overhead_steady": reference / steady - 1 if steady else None,
                }
                results["runs"].append(run)
    print_table(results)
    return results


def ray_run(encode_dataset, ds, args: argparse.Namespace, workers: int, cpus: float, count: int) -> dict:
    """One Ray job: seconds to the first result and to the last, and the steady rate in between."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    encoded = encode_dataset(ds, args.model, batch_size=args.batch_size, workers=workers, cpus_per_worker=cpus)
    first_at, first_rows, rows = None, 0, 0
    for batch in encoded.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows += batch.num_rows
        if first_at is None:
            first_at, first_rows = time.perf_counter(), batch.num_rows
    done_at = time.perf_counter()
    if rows != count:
        raise SystemExit(f"Ray returned {rows} rows for {count} texts")
    run = {
        "workers": workers,
        "cpus_per_worker": cpus,
        "load_before": load,
        "first_result_s": first_at - started,
        "total_s": done_at - started,
        "texts_per_s": count / (done_at - started),
        "steady_texts_per_s": (rows - first_rows) / (done_at - first_at) if rows >= 4 * first_rows else None,
    }  # steady state: after the first result, where enough results follow it (else None)
    print(
        f"Ray, {workers} worker(s): first result after {run['first_result_s']:.1f} s, "
        f"all after {run['total_s']:.1f} s (load {load:.1f})",
        flush=True,
    )
    return run


def print_table(results: dict) -> None:
    print()
    print(
        "| Ray run | torch threads | first result | texts/s, whole run / steady state "
        "| plain encode before / after, texts/s | extra time per text, whole / steady |"
    )
    print("|---|---|---|---|---|---|")
    for run in results["runs"]:
        before, after = run["plain_before"]["texts_per_s"], run["plain_after"]["texts_per_s"]
        print(
            f"| {run['workers']} worker(s) of {run['cpus_per_worker']:g} CPU | {run['workers']} x 1 "
            f"| {run['first_result_s']:.1f} s | {run['texts_per_s']:,.0f} / {_figure(run['steady_texts_per_s'], ',.0f')} "
            f"| {before:,.0f} / {after:,.0f} | {run['overhead_whole']:+.0%} / {_figure(run['overhead_steady'], '+.0%')} |"
        )
    print(f"\nRay local runtime start-up (once per command, not in the rows above): {results['ray_start_s']:.1f} s")


def _figure(value: float | None, spec: str) -> str:
    return "n/a (too few texts)" if value is None else format(value, spec)


def milvus_part(argv: list[str]) -> None:
    """``scale_store.main(argv)`` beside this file, where it exists."""
    if importlib.util.find_spec("scale_store") is None:
        print("# Milvus vs FAISS: benchmarks/scale_store.py is missing; skipped")
        return
    import scale_store

    scale_store.main(argv)


if __name__ == "__main__":
    main()
