"""Hard-negative mining: in-batch negatives training with and without mined negatives.

    python benchmarks/bench_mining.py                 # the CPU recipe below (minutes on 2 cores)
    python benchmarks/bench_mining.py --skip-reference

Pairs: the STS-B train pairs scored >= 4 (sentence1 -> sentence2); corpus: every distinct
STS-B train sentence. Negatives: ``mine_hard_negatives`` with all-MiniLM-L6-v2 (3 a pair, ranks
10:50, margin 0.05), and the same settings through sentence-transformers' ``mine_hard_negatives``
(the peer; ``range_min=10, range_max=50, absolute_margin=0.05``), both trained the same way.
Training: all-MiniLM-L6-v2, ``--loss mnrl`` (temperature 0.05), 1 epoch, batch 32, lr 2e-5, 10%
warm-up, seed 0, fp32. Held-in evaluation: STS-B paraphrase retrieval on test (queries: sentence1
of test pairs scored >= 4; relevant: its sentence2; corpus: every distinct sentence of train, dev
and test), nDCG@10 / MRR@10, and STS-B test Spearman.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.data import load_stsb, sts_paraphrase_retrieval  # noqa: E402
from sentsim.evaluation import evaluate_retrieval, evaluate_sts  # noqa: E402
from sentsim.storage.hub import resolve_model_path  # noqa: E402
from sentsim.training import TrainingConfig, load_training_data, make_loss, train  # noqa: E402
from sentsim.training.mining import mine_hard_negatives  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--min-score", type=float, default=4.0, help="training pairs: STS-B train scored >= this")
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--range", default="10:50")
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-reference", action="store_true", help="do not mine with sentence-transformers")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rank_range = tuple(int(part) for part in args.range.split(":"))
    stsb = {split: load_stsb(split, data_dir=args.data_dir) for split in ("train", "dev", "test")}
    train_pairs = stsb["train"]
    keep = [i for i, score in enumerate(train_pairs.scores) if score >= args.min_score]
    anchors = [train_pairs.sentences1[i] for i in keep]
    positives = [train_pairs.sentences2[i] for i in keep]
    corpus = list(dict.fromkeys(train_pairs.sentences1 + train_pairs.sentences2))
    retrieval = sts_paraphrase_retrieval(stsb["test"], [stsb["train"], stsb["dev"]])
    print(
        f"# {args.model}: {len(anchors)} STS-B train pairs (score >= {args.min_score}), corpus {len(corpus)} "
        f"sentences; mnrl, {args.epochs} epoch(s), batch {args.batch_size}, lr {args.lr}; {machine()}"
    )
    print(
        f"# evaluation: STS-B test paraphrase retrieval ({len(retrieval.queries)} queries, {len(retrieval.corpus)} docs)"
    )
    results: dict = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "pairs": len(anchors)}

    def evaluate(encoder) -> dict:
        found = evaluate_retrieval(encoder, retrieval, batch_size=128, show_progress=False)
        sts = evaluate_sts(encoder, stsb["test"], show_progress=False)["spearman"]
        return {"ndcg@10": found["ndcg@10"], "mrr@10": found["mrr@10"], "recall@10": found["recall@10"], "sts": sts}

    def run(name: str, columns: dict) -> None:
        encoder = SentenceEncoder.from_pretrained(args.model, device="cpu")
        config = TrainingConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            warmup_ratio=0.1,
            seed=args.seed,
            show_progress=False,
        )
        start = time.perf_counter()
        train(encoder, load_training_data(columns), make_loss("mnrl"), config)
        seconds = time.perf_counter() - start
        results[name] = {"train_seconds": seconds, "rows": len(columns["anchor"]), **evaluate(encoder)}
        _row(name, results[name])

    print(f"{'':<34} {'rows':>6} {'nDCG@10':>8} {'MRR@10':>8} {'R@10':>7} {'STS-B':>7} {'train s':>8}")
    frozen = SentenceEncoder.from_pretrained(args.model, device="cpu")
    results["frozen"] = evaluate(frozen)
    _row("frozen", results["frozen"])

    start = time.perf_counter()
    mined = mine_hard_negatives(
        anchors,
        positives,
        corpus,
        encoder=frozen,
        negatives=args.negatives,
        rank_range=rank_range,
        margin=args.margin,
        batch_size=128,
        show_progress=False,
    )
    results["mining_seconds"] = time.perf_counter() - start
    results["mined_rows"], results["dropped"] = len(mined), len(mined.dropped)
    print(
        f"# sentsim mined {args.negatives} negatives for {len(mined)} pairs ({len(mined.dropped)} dropped) "
        f"in {results['mining_seconds']:.1f} s"
    )
    run("in-batch negatives", {"anchor": anchors, "positive": positives})
    run(f"+ {args.negatives} mined negatives (sentsim)", mined.columns())
    if not args.skip_reference:
        columns, seconds = _sentence_transformers_mined(args, anchors, positives, corpus, rank_range)
        results["st_mining_seconds"], results["st_rows"] = seconds, len(columns["anchor"])
        print(f"# sentence-transformers mined negatives for {len(columns['anchor'])} pairs in {seconds:.1f} s")
        run(f"+ {args.negatives} mined (sentence-transformers)", columns)
    print("# timings shared the 2 cores with other jobs: quality figures only")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def _row(name: str, figures: dict) -> None:
    rows = figures.get("rows", "")
    seconds = f"{figures['train_seconds']:.0f}" if "train_seconds" in figures else ""
    print(
        f"{name:<34} {rows:>6} {figures['ndcg@10']:>8.2f} {figures['mrr@10']:>8.2f} {figures['recall@10']:>7.2f} "
        f"{figures['sts']:>7.2f} {seconds:>8}"
    )


def _sentence_transformers_mined(args, anchors, positives, corpus, rank_range) -> tuple[dict, float]:
    """The same mining through sentence-transformers' ``mine_hard_negatives`` (n-tuple output)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives as st_mine

    model = SentenceTransformer(str(resolve_model_path(args.model)), device="cpu")
    start = time.perf_counter()
    mined = st_mine(
        Dataset.from_dict({"anchor": anchors, "positive": positives}),
        model,
        corpus=corpus,
        range_min=rank_range[0],
        range_max=rank_range[1],
        absolute_margin=args.margin,
        num_negatives=args.negatives,
        sampling_strategy="top",
        output_format="n-tuple",
        batch_size=128,
        verbose=False,
    )
    return mined.to_dict(), time.perf_counter() - start


if __name__ == "__main__":
    main()
