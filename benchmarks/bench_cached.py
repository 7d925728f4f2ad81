"""Cached in-batch negatives (GradCache): peak memory of one training step vs batch and mini-batch.

    python benchmarks/bench_cached.py                  # all-MiniLM-L6-v2 on CPU, STS-B pairs (~15 min on 2 cores)
    python benchmarks/bench_cached.py --quick          # fewer configurations

Each configuration runs in a fresh process: load the model and a batch of (sentence1, sentence2)
STS-B train pairs, reset the peak resident memory (``/proc/self/clear_refs``), run one optimizer
step of in-batch negatives, and report the peak resident memory above the level before the step
(activations, gradients, AdamW state) and the step's seconds (timings on a shared CPU are
distorted). sentsim's ``InBatchNegativesLoss`` without and with ``mini_batch_size``, beside
sentence-transformers' ``MultipleNegativesRankingLoss`` and ``CachedMultipleNegativesRankingLoss``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine  # noqa: E402

FULL = [  # (library, batch, mini-batch or None)
    ("sentsim", 128, None),
    ("sentsim", 512, None),
    ("sentsim", 128, 32),
    ("sentsim", 512, 32),
    ("sentsim", 1024, 32),
    ("sentsim", 512, 8),
    ("sentsim", 512, 128),
    ("sentence-transformers", 512, None),
    ("sentence-transformers", 512, 32),
    ("sentence-transformers", 1024, 32),
]
QUICK = [
    ("sentsim", 256, None),
    ("sentsim", 256, 32),
    ("sentsim", 1024, 32),
    ("sentsim", 1024, 128),
    ("sentence-transformers", 1024, 32),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", nargs=3, metavar=("LIBRARY", "BATCH", "MINI"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        library, batch, mini = args.one
        print(json.dumps(_measure(args, library, int(batch), None if mini == "-" else int(mini))))
        return
    print(f"# one in-batch negatives step, {args.model}, STS-B train pairs; {machine()}", flush=True)
    print(f"{'library':<22} {'batch':>6} {'mini-batch':>10} {'peak MB':>9} {'step s':>8}", flush=True)
    results = []
    for library, batch, mini in QUICK if args.quick else FULL:
        command = [sys.executable, __file__, "--model", args.model, "--data-dir", str(args.data_dir)]
        command += ["--one", library, str(batch), "-" if mini is None else str(mini)]
        measured = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        results.append(measured)
        label = "-" if mini is None else str(mini)
        print(
            f"{library:<22} {batch:>6} {label:>10} {measured['peak_mb']:>9.0f} {measured['seconds']:>8.1f}", flush=True
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2) + "\n")


def _measure(args, library: str, batch: int, mini: int | None) -> dict:
    import torch

    from sentsim.data import load_stsb

    torch.manual_seed(0)
    train = load_stsb("train", data_dir=args.data_dir)
    anchors, positives = train.sentences1[:batch], train.sentences2[:batch]
    step = _sentsim_step if library == "sentsim" else _sentence_transformers_step
    run = step(args.model, anchors, positives, mini)
    baseline = _reset_peak()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    peak = _peak_rss() - baseline
    return {"library": library, "batch": batch, "mini_batch": mini, "peak_mb": peak / 2**20, "seconds": seconds}


def _sentsim_step(model: str, anchors: list[str], positives: list[str], mini: int | None):
    from sentsim import SentenceEncoder
    from sentsim.training import InBatchNegativesLoss, TrainingConfig, load_training_data, train

    encoder = SentenceEncoder.from_pretrained(model, device="cpu")
    data = load_training_data({"anchor": anchors, "positive": positives})
    config = TrainingConfig(batch_size=len(anchors), show_progress=False)  # one step over the whole batch
    return lambda: train(encoder, data, InBatchNegativesLoss(mini_batch_size=mini), config, device="cpu")


def _sentence_transformers_step(model: str, anchors: list[str], positives: list[str], mini: int | None):
    import torch
    from sentence_transformers import SentenceTransformer

    from sentsim.storage.hub import resolve_model_path

    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # sentence-transformers < 6.2
        from sentence_transformers import losses

    st = SentenceTransformer(str(resolve_model_path(model)), device="cpu")
    st.train()
    if mini is None:
        loss = losses.MultipleNegativesRankingLoss(st)
    else:
        loss = losses.CachedMultipleNegativesRankingLoss(st, mini_batch_size=mini)
    optimizer = torch.optim.AdamW(st.parameters(), lr=2e-5)

    def step() -> None:
        features = [st.tokenize(anchors), st.tokenize(positives)]
        loss(features, None).backward()
        torch.nn.utils.clip_grad_norm_(st.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _reset_peak() -> int:
    """Reset the peak resident memory of this process (Linux); the resident memory now, in bytes."""
    import gc

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _peak_rss() -> int:
    return _status("VmHWM")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


if __name__ == "__main__":
    main()
