"""Fine-tuning: sentsim vs sentence-transformers, same model, data and recipe, in the same run.

    python benchmarks/bench_train.py                       # the full recipe: 4 epochs of STS-B train
    python benchmarks/bench_train.py --epochs 1 --limit 1000   # a shorter run
    python benchmarks/bench_train.py --compare-padded          # sentsim also with packed=False

Recipe (../shared/data/README.md): all-MiniLM-L6-v2, CoSENT, batch 16, lr 2e-5, 10% warm-up,
bf16 on a GPU (fp32 on CPU), scores rescaled to [0, 1]. Prints wall time, pairs/s and STS-B
test Spearman for both. sentsim runs with its defaults (packed batches on CUDA);
``--compare-padded`` adds a run with ``packed=False`` and ``--packed`` forces packing (a CPU too). Reference on one H100 (sentence-transformers 6.0.1): 86.20 in 77 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine, train_sentence_transformers  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.data import load_stsb  # noqa: E402
from sentsim.evaluation import evaluate_sts  # noqa: E402
from sentsim.training import TrainingConfig, load_training_data, make_loss, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--limit", type=int, help="use only the first N training pairs")
    parser.add_argument("--skip-reference", action="store_true", help="do not run sentence-transformers")
    parser.add_argument("--compare-padded", action="store_true", help="also train sentsim with packed=False")
    parser.add_argument("--packed", action="store_true", help="sentsim's main run with packed=True")
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
    pairs_seen = limit * args.epochs
    print(
        f"# fine-tuning {args.model} with CoSENT on {limit} STS-B train pairs x {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}; {machine()}"
    )
    results: dict = {"machine": machine(), "pairs": limit, "epochs": args.epochs}

    print(f"{'':<22} {'wall s':>8} {'pairs/s':>8} {'test Spearman':>14}")
    runs = {"sentsim": True if args.packed else None}
    if args.compare_padded:
        runs["sentsim_padded"] = False
    for name, packed in runs.items():
        encoder = SentenceEncoder.from_pretrained(args.model)
        before = evaluate_sts(encoder, stsb["test"], show_progress=False)["spearman"]
        config = TrainingConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            warmup_ratio=0.1,
            show_progress=False,
            packed=packed,
        )
        start = time.perf_counter()
        train(encoder, load_training_data(columns), make_loss("cosent"), config)
        seconds = time.perf_counter() - start
        ours = evaluate_sts(encoder, stsb["test"], show_progress=False)["spearman"]
        results[name] = {
            "seconds": seconds,
            "pairs_per_second": pairs_seen / seconds,
            "test_spearman": ours,
            "before": before,
            "packed": packed,
        }
        label = name.replace("_", " ")
        print(f"{label:<22} {seconds:>8.1f} {pairs_seen / seconds:>8.1f} {ours:>14.2f}   (before: {before:.2f})")

    if not args.skip_reference:
        theirs_seconds, theirs = _sentence_transformers(args, columns, stsb["test"])
        results["sentence_transformers"] = {
            "seconds": theirs_seconds,
            "pairs_per_second": pairs_seen / theirs_seconds,
            "test_spearman": theirs,
        }
        print(
            f"{'sentence-transformers':<22} {theirs_seconds:>8.1f} {pairs_seen / theirs_seconds:>8.1f} {theirs:>14.2f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _sentence_transformers(args, columns: dict, test) -> tuple[float, float]:
    seconds, folder = train_sentence_transformers(args, columns, lambda model, losses: losses.CoSENTLoss(model))
    return seconds, evaluate_sts(SentenceEncoder.from_pretrained(folder), test, show_progress=False)["spearman"]


if __name__ == "__main__":
    main()
