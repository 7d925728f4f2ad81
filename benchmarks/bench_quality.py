"""Quality of a frozen model on the project's tasks, beside the reference figures.

    python benchmarks/bench_quality.py [--model all-MiniLM-L6-v2] [--data-dir ../shared/data] [--json out.json]

STS-B test Spearman; STS-B pair classification (threshold tuned on dev, applied to test,
calibrated probabilities); STS-B paraphrase retrieval; CLINC150 few-shot with class
prototypes (1 / 5 / 10 shots, 5 seeds) and out-of-scope detection (threshold tuned on val).
References: ../shared/data/README.md (sentence-transformers 6.x, same model and files).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, machine  # noqa: E402

from sentsim import SentenceEncoder  # noqa: E402
from sentsim.data import load_clinc150, load_stsb, sts_pair_classification, sts_paraphrase_retrieval  # noqa: E402
from sentsim.decisions import FewShotClassifier, PairClassifier  # noqa: E402
from sentsim.evaluation import classification_metrics, evaluate_pairs, evaluate_retrieval, evaluate_sts  # noqa: E402

REFERENCE = {"sts_test_spearman": 82.03, "clinc_1": 64.9, "clinc_5": 85.6, "clinc_10": 88.0, "clinc_all": 91.7}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    encoder = SentenceEncoder.from_pretrained(args.model)
    quiet = {"show_progress": False}
    results: dict = {"machine": machine(), "model": args.model}
    start = time.perf_counter()
    print(f"# quality, {args.model}; {machine()}")

    stsb = {split: load_stsb(split, data_dir=args.data_dir) for split in ("train", "dev", "test")}
    sts = evaluate_sts(encoder, stsb["test"], **quiet)
    results["sts"] = sts
    print(f"STS-B test Spearman (cosine x100)      {sts['spearman']:7.2f}   reference {REFERENCE['sts_test_spearman']}")

    dev_pairs, test_pairs = sts_pair_classification(stsb["dev"]), sts_pair_classification(stsb["test"])
    tuned = evaluate_pairs(encoder, dev_pairs, **quiet)
    pairs = evaluate_pairs(encoder, test_pairs, threshold=tuned["threshold"], **quiet)
    results["pairs"] = pairs
    print(
        f"STS-B pairs (>=4 vs <=1), dev threshold {tuned['threshold']:.3f} on test: accuracy {pairs['accuracy']:.2f}  "
        f"F1 {pairs['f1']:.2f}  AP {pairs['average_precision']:.2f}  (n={pairs['n']})"
    )
    for calibration in ("platt", "isotonic"):
        classifier = PairClassifier(encoder, **quiet).fit(
            dev_pairs.sentences1, dev_pairs.sentences2, dev_pairs.labels, calibration=calibration
        )
        report = classifier.evaluate(test_pairs.sentences1, test_pairs.sentences2, test_pairs.labels)
        results[f"pair_classifier_{calibration}"] = report
        print(
            f"  PairClassifier({calibration:8}) on test: accuracy {report['accuracy']:.2f}  Brier {report['brier']:.4f}  "
            f"ECE {report['ece']:.4f}"
        )

    retrieval_data = sts_paraphrase_retrieval(stsb["test"], [stsb["train"], stsb["dev"]])
    retrieval = evaluate_retrieval(encoder, retrieval_data, **quiet)
    results["retrieval"] = retrieval
    print(
        f"STS-B paraphrase retrieval ({retrieval['queries']} queries, {retrieval['corpus']} docs): "
        f"MRR@10 {retrieval['mrr@10']:.2f}  nDCG@10 {retrieval['ndcg@10']:.2f}  Recall@10 {retrieval['recall@10']:.2f}"
    )

    clinc = {
        split: load_clinc150(split, data_dir=args.data_dir) for split in ("train", "val", "test", "oos_val", "oos_test")
    }
    embedded = {split: encoder.encode(data.texts, batch_size=128, **quiet) for split, data in clinc.items()}
    row_of = {text: i for i, text in enumerate(clinc["train"].texts)}

    def classifier_for(shots: int | None, seed: int) -> FewShotClassifier:
        support = clinc["train"] if shots is None else clinc["train"].sample_per_class(shots, seed)
        rows = [row_of[text] for text in support.texts]
        return FewShotClassifier(encoder, **quiet).add_examples(
            support.texts, support.labels, embeddings=embedded["train"][rows]
        )

    results["clinc_few_shot"] = {}
    for shots in (1, 5, 10):
        accuracies = [
            classification_metrics(clinc["test"].labels, classifier_for(shots, seed).predict(embedded["test"]))[
                "accuracy"
            ]
            for seed in range(args.seeds)
        ]
        results["clinc_few_shot"][shots] = {
            "seed_0": accuracies[0],
            "mean": float(np.mean(accuracies)),
            "std": float(np.std(accuracies)),
            "all": accuracies,
        }
        print(
            f"CLINC150 {shots:>2}-shot prototypes: seed 0 {accuracies[0]:.2f}, mean {np.mean(accuracies):.2f} "
            f"± {np.std(accuracies):.2f} over {args.seeds} seeds   reference {REFERENCE[f'clinc_{shots}']}"
        )
    full = classification_metrics(clinc["test"].labels, classifier_for(None, 0).predict(embedded["test"]))["accuracy"]
    results["clinc_few_shot"]["all"] = full
    print(f"CLINC150 all 100 per class prototypes: {full:.2f}   reference {REFERENCE['clinc_all']}")

    results["out_of_scope"] = {}
    tune_embeddings = np.concatenate([embedded["val"], embedded["oos_val"]])
    test_embeddings = np.concatenate([embedded["test"], embedded["oos_test"]])
    for shots in (5, 10, None):
        classifier = classifier_for(shots, 0)
        tune_labels = clinc["val"].labels + [classifier.unknown_label] * len(clinc["oos_val"])
        threshold = classifier.fit_threshold(tune_embeddings, tune_labels)
        predicted = classifier.predict(test_embeddings)
        n_in = len(clinc["test"])
        in_scope = 100 * float(np.mean([p == t for p, t in zip(predicted[:n_in], clinc["test"].labels, strict=True)]))
        recall = 100 * float(np.mean([p == classifier.unknown_label for p in predicted[n_in:]]))
        name = "all" if shots is None else f"{shots}-shot"
        results["out_of_scope"][name] = {"threshold": threshold, "in_scope_accuracy": in_scope, "oos_recall": recall}
        print(
            f"Out-of-scope, {name:>7} (seed 0), threshold {threshold:.3f} from val: in-scope accuracy {in_scope:.2f}  OOS recall {recall:.2f}"
        )
    print(f"# {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
