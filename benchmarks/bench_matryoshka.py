"""Matryoshka training: STS-B test Spearman at 384 / 256 / 128 / 64 dimensions, base vs trained.

    python benchmarks/bench_matryoshka.py                     # 1 epoch of STS-B train, batch 16 (CPU: ~20 min)
    python benchmarks/bench_matryoshka.py --skip-reference    # without sentence-transformers' MatryoshkaLoss

Recipe (as bench_train.py, shortened to 1 epoch for a CPU): all-MiniLM-L6-v2, CoSENT, batch 16,
lr 2e-5, 10% warm-up, scores rescaled to [0, 1], seed 0. Four models, each evaluated with
``truncate_dim`` set to every dimension (cut, then re-normalized): the base model, plain CoSENT,
sentsim's ``MatryoshkaLoss(CoSENTLoss(), [384, 256, 128, 64])``, and sentence-transformers'
``MatryoshkaLoss`` with the same recipe (the peer), trained in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine, train_sentence_transformers  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.data import load_stsb  # noqa: E402
from sentsim.evaluation import evaluate_sts  # noqa: E402
from sentsim.training import CoSENTLoss, MatryoshkaLoss, TrainingConfig, load_training_data, train  # noqa: E402

DIMS = (384, 256, 128, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--limit", type=int, help="use only the first N training pairs")
    parser.add_argument("--skip-reference", action="store_true", help="do not run sentence-transformers")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    stsb = {split: load_stsb(split, data_dir=args.data_dir) for split in ("train", "test")}
    limit = args.limit or len(stsb["train"])
    columns = {
        "sentence1": stsb["train"].sentences1[:limit],
        "sentence2": stsb["train"].sentences2[:limit],
        "score": (stsb["train"].scores[:limit] / 5.0).tolist(),
    }
    print(
        f"# Matryoshka: {args.model}, CoSENT on {limit} STS-B train pairs x {args.epochs} epoch(s), batch "
        f"{args.batch_size}, lr {args.lr}; STS-B test Spearman x100 at each truncation; {machine()}",
        flush=True,
    )
    config = TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, warmup_ratio=0.1, show_progress=False
    )
    losses = {"base": None, "sentsim Matryoshka": MatryoshkaLoss(CoSENTLoss(), DIMS), "sentsim CoSENT": CoSENTLoss()}
    scores: dict[str, dict[int, float]] = {}
    seconds: dict[str, float] = {}
    for name, loss in losses.items():
        encoder = SentenceEncoder.from_pretrained(args.model)
        if loss is not None:
            start = time.perf_counter()
            train(encoder, load_training_data(columns), loss, config)
            seconds[name] = time.perf_counter() - start
        scores[name] = _spearman_by_dim(encoder, stsb["test"])
        print(f"{name}: " + ", ".join(f"{dim} {value:.2f}" for dim, value in scores[name].items()), flush=True)
    if not args.skip_reference:
        seconds["s-t Matryoshka"], folder = _sentence_transformers(args, columns)
        scores["s-t Matryoshka"] = _spearman_by_dim(SentenceEncoder.from_pretrained(folder), stsb["test"])

    names = list(scores)
    print(f"{'dims':>5} " + " ".join(f"{name:>19}" for name in names))
    for dim in DIMS:
        print(f"{dim:>5} " + " ".join(f"{scores[name][dim]:>19.2f}" for name in names))
    print(
        "training s (pairs/s; timings on a shared CPU are distorted): "
        + ", ".join(f"{name} {s:.0f} ({limit * args.epochs / s:.1f})" for name, s in seconds.items())
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        results = {"machine": machine(), "pairs": limit, "epochs": args.epochs, "spearman": scores, "seconds": seconds}
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _spearman_by_dim(encoder: SentenceEncoder, test) -> dict[int, float]:
    """STS-B test Spearman with the encoder truncated to each dimension (the full one first)."""
    results = {}
    with warnings.catch_warnings():  # the base model was not trained for truncation: that is the point here
        warnings.simplefilter("ignore", UserWarning)
        for dim in DIMS:
            encoder.truncate_dim = dim
            results[dim] = evaluate_sts(encoder, test, show_progress=False)["spearman"]
    encoder.truncate_dim = None
    return results


def _sentence_transformers(args, columns: dict) -> tuple[float, Path]:
    return train_sentence_transformers(
        args, columns, lambda model, losses: losses.MatryoshkaLoss(model, losses.CoSENTLoss(model), list(DIMS))
    )


if __name__ == "__main__":
    main()
