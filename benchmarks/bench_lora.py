"""LoRA vs full fine-tuning: trainable parameters, STS-B test Spearman, size on disk, same run.

    python benchmarks/bench_lora.py                          # the short CPU recipe below
    python benchmarks/bench_lora.py --limit 0 --epochs 4     # all of STS-B train, 4 epochs (a GPU's job)

Recipe: all-MiniLM-L6-v2, CoSENT on the first ``--limit`` STS-B train pairs (scores rescaled
to [0, 1]), ``--epochs``, batch 16, 10% warm-up, seed 0, fp32 on CPU. Full fine-tuning at lr 2e-5
(the reference recipe's); LoRA rank 16, alpha 32 on query and value at ``--lora-lr`` (adapters
train at a higher rate: only 0.3% of the weights move). Prints parameters that train, STS-B test
Spearman (frozen, full, LoRA; the LoRA model also after a save/load round trip and merged), wall
time, and the size on disk of what each run saves.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.data import load_stsb  # noqa: E402
from sentsim.evaluation import evaluate_sts  # noqa: E402
from sentsim.lora import LoraSettings, add_lora, trainable_parameters  # noqa: E402
from sentsim.training import TrainingConfig, load_training_data, make_loss, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--limit", type=int, default=2000, help="first N STS-B train pairs (0: all 5,749)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5, help="full fine-tuning")
    parser.add_argument("--lora-lr", type=float, default=5e-4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32)
    parser.add_argument("--targets", default="query,value")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    stsb = {split: load_stsb(split, data_dir=args.data_dir) for split in ("train", "test")}
    limit = args.limit or len(stsb["train"])
    data = load_training_data(
        {
            "sentence1": stsb["train"].sentences1[:limit],
            "sentence2": stsb["train"].sentences2[:limit],
            "score": (stsb["train"].scores[:limit] / 5.0).tolist(),
        }
    )
    print(
        f"# {args.model}, CoSENT on {limit} STS-B train pairs x {args.epochs} epoch(s), batch {args.batch_size}; "
        f"{machine()}"
    )
    results: dict = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}

    def spearman(encoder) -> float:
        return evaluate_sts(encoder, stsb["test"], batch_size=128, show_progress=False)["spearman"]

    def run(name: str, lr: float, lora: LoraSettings | None, folder: Path) -> SentenceEncoder:
        encoder = SentenceEncoder.from_pretrained(args.model, device="cpu")
        if lora is not None:
            add_lora(encoder, lora)
        trainable, total = trainable_parameters(encoder)
        config = TrainingConfig(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=lr, warmup_ratio=0.1, show_progress=False
        )
        start = time.perf_counter()
        train(encoder, data, make_loss("cosent"), config)
        seconds = time.perf_counter() - start
        encoder.eval().save_pretrained(folder)
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        results[name] = {
            "lr": lr,
            "trainable": trainable,
            "parameters": total,
            "spearman": spearman(encoder),
            "seconds": seconds,
            "bytes_on_disk": size,
        }
        figures = results[name]
        print(
            f"{name:<28} {trainable:>12,} {100 * trainable / total:>7.2f}% {lr:>8.0e} {figures['spearman']:>9.2f} "
            f"{seconds:>8.0f} {size / 2**20:>10.2f}"
        )
        return encoder

    print(f"{'':<28} {'trainable':>12} {'share':>8} {'lr':>8} {'Spearman':>9} {'train s':>8} {'disk MiB':>10}")
    results["frozen"] = {"spearman": spearman(SentenceEncoder.from_pretrained(args.model, device="cpu"))}
    print(f"{'frozen':<28} {'':>12} {'':>8} {'':>8} {results['frozen']['spearman']:>9.2f}")
    with tempfile.TemporaryDirectory() as scratch:
        run("full fine-tuning", args.lr, None, Path(scratch) / "full")
        lora = LoraSettings(rank=args.rank, alpha=args.alpha, targets=tuple(args.targets.split(",")))
        adapted = run(f"LoRA r{args.rank} ({args.targets})", args.lora_lr, lora, Path(scratch) / "lora")
        reloaded = spearman(SentenceEncoder.from_pretrained(Path(scratch) / "lora", device="cpu"))
        adapted.save_pretrained(Path(scratch) / "merged", merge=True)
        merged = spearman(SentenceEncoder.from_pretrained(Path(scratch) / "merged", device="cpu"))
    results["lora_reloaded_spearman"], results["lora_merged_spearman"] = reloaded, merged
    print(
        f"# the LoRA model reloaded from its adapter folder: {reloaded:.2f}; merged into a plain folder: {merged:.2f}"
    )
    print("# wall times shared the 2 cores with other jobs: not a speed comparison")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
