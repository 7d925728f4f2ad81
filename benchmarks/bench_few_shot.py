"""CLINC150 few-shot and zero-shot: sentsim (frozen, fine-tuned, with and without label names) beside SetFit.

    python benchmarks/bench_few_shot.py --shots 5 --seeds 0 --systems frozen tuned tuned-names setfit --oos
    python benchmarks/bench_few_shot.py --shots 1 5 10 --seeds 0 1 2 3 4 --eval-split val --sweep   # pick weights
    python benchmarks/bench_few_shot.py --shots 5 --seeds 0 --eval-split val --systems tuned-names --label-share 0.5

Support sets are sampled from train with ``sample_per_class(shots, seed)``; every system gets the
same sample and is scored on the same texts (``--eval-split``: choose settings on val, report on
test). Systems (each cell is accuracy x 100, with both heads for sentsim: prototypes / logistic):

- zero-shot (always): frozen model, one label text per class (its name in words), no examples;
- ``frozen``: the frozen model's prototypes / logistic head, without and with label names;
- ``tuned``: sentsim's Siamese fine-tuning (in-batch negatives, 20 rounds, batch 128, lr 5e-5),
  no label texts: the recipe before label names;
- ``tuned-names``: the same with ``label_text="names"`` (label names in the prototype and head,
  and as fine-tuning anchors with ``--label-share``); the ``tuned`` run also reports its tuned
  model with names added at scoring time only (``tuned+names-at-scoring``), which isolates what
  the fine-tuning anchors add;
- ``setfit``: SetFit (PyPI) with the same base model, its default recipe (contrastive pairs with
  CosineSimilarityLoss, batch 16, lr 2e-5, 1 epoch, then a scikit-learn logistic head) at
  ``num_iterations=20`` (its library default, ``None``, draws every unique pair: about 560,000 for
  750 examples, days on a CPU).

``--oos``: out-of-scope detection (5-shot and zero-shot): the threshold is chosen on val + oos_val
(balanced: mean of in-scope accuracy and out-of-scope recall), then in-scope accuracy (an "oos"
answer to an in-scope text is an error) and out-of-scope recall on test + oos_test.
``--sweep``: frozen accuracy by ``label_weight`` (prototypes and logistic head), to choose it on val.
Train times are wall seconds of the fine-tuning call (sentsim: ``fine_tune``, its re-embedding
of the support set included; SetFit: ``trainer.train()``), on whatever else shares the machine.
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
from sentsim.data import load_clinc150  # noqa: E402
from sentsim.decisions import FewShotClassifier  # noqa: E402
from sentsim.evaluation import classification_metrics  # noqa: E402
from sentsim.storage.hub import resolve_model_path  # noqa: E402
from sentsim.training import TrainingConfig  # noqa: E402

SYSTEMS = ("frozen", "tuned", "tuned-names", "setfit")
SWEEP_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--shots", type=int, nargs="+", default=[5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--eval-split", default="test", choices=["val", "test"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--label-weight", type=float, default=None, help="default: the library's")
    parser.add_argument("--label-share", type=float, default=None, help="default: the library's")
    parser.add_argument("--setfit-iterations", type=int, default=20)
    parser.add_argument("--oos", action="store_true", help="out-of-scope detection, threshold chosen on val")
    parser.add_argument("--sweep", action="store_true", help="frozen accuracy by label_weight (choose on val)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    weight = {} if args.label_weight is None else {"label_weight": args.label_weight}
    share = {} if args.label_share is None else {"label_share": args.label_share}
    train_set = load_clinc150("train", data_dir=args.data_dir)
    test = load_clinc150(args.eval_split, data_dir=args.data_dir)
    oos = _oos_sets(args, test) if args.oos else None
    frozen_encoder = SentenceEncoder.from_pretrained(args.model)
    print(
        f"# CLINC150, evaluated on {args.eval_split} ({len(test)} in-scope texts), {args.model}; {machine()}; "
        f"shots {args.shots}, seeds {args.seeds}",
        flush=True,
    )
    frozen_test = _encode(frozen_encoder, test.texts)
    classes = sorted(set(train_set.labels))
    results: dict = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "cells": []}

    frozen_oos = _oos_embeddings(frozen_encoder, oos, frozen_test) if oos else None
    zero = FewShotClassifier(frozen_encoder, labels=classes, label_text="names", show_progress=False, **weight)
    results["zero_shot"] = {"accuracy": _accuracy(zero, frozen_test, test.labels)}
    if oos:
        results["zero_shot"] |= _out_of_scope(zero, oos, frozen_oos)
    _print_cell({"shots": 0, "seed": "-", "zero-shot (names only)": results["zero_shot"]})

    for shots in args.shots:
        for seed in args.seeds:
            support = train_set.sample_per_class(shots, seed)
            cell = {"shots": shots, "seed": seed}
            results["cells"].append(cell)
            if "frozen" in args.systems or args.sweep:
                found = _frozen(frozen_encoder, support, frozen_test, test, weight, args.sweep)
                if oos and shots == 5:
                    for key, names in (("frozen", False), ("frozen_names", True)):
                        classifier = _classifier(frozen_encoder, support, names, weight)
                        found[f"{key}_oos"] = _out_of_scope(classifier, oos, frozen_oos)
                _print_cell({"shots": shots, "seed": seed, **found})
                cell |= found
            for system in ("tuned-names", "setfit", "tuned"):  # the main system first
                if system not in args.systems:
                    continue
                if system == "setfit":
                    found = {"setfit": _setfit(args, support, test, seed)}
                else:
                    found = _tuned(args, support, test, system == "tuned-names", weight, share, seed)
                    if oos and shots == 5 and system == "tuned-names":
                        encoder, embeddings = found.pop("encoder"), found[system].pop("embeddings")
                        found[f"{system}_oos"] = _out_of_scope(
                            found.pop("classifier"), oos, _oos_embeddings(encoder, oos, embeddings)
                        )
                    found = {key: value for key, value in found.items() if key not in ("encoder", "classifier")}
                    found[system].pop("embeddings", None)
                _print_cell({"shots": shots, "seed": seed, **found})
                cell |= found
            if args.json:  # after every cell: a long run that is stopped keeps what it measured
                _write_json(args.json, results)
    _print_summary(results["cells"], args)
    if args.json:
        _write_json(args.json, results)


def _write_json(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def _tuned(args, support, test, names: bool, weight: dict, share: dict, seed: int) -> dict:
    """sentsim's fine-tuning on a fresh copy of the model; accuracy of both heads on the eval texts."""
    system = "tuned-names" if names else "tuned"
    encoder = SentenceEncoder.from_pretrained(args.model)
    classifier = _classifier(encoder, support, names, weight)
    config = TrainingConfig(epochs=1, batch_size=128, learning_rate=5e-5, warmup_ratio=0.1, show_progress=False)
    start = time.perf_counter()
    classifier.fine_tune(rounds=args.rounds, config=config, seed=seed, **share)
    seconds = time.perf_counter() - start
    embeddings = _encode(encoder, test.texts)
    result = _both_heads(classifier, embeddings, test.labels) | {"seconds": round(seconds, 1), "embeddings": embeddings}
    found = {system: result, "encoder": encoder, "classifier": classifier}
    if not names:  # label names added at scoring time only: what the names add without anchoring the fine-tuning
        named = _classifier(encoder, support, True, weight, _encode(encoder, support.texts))
        found["tuned+names-at-scoring"] = _both_heads(named, embeddings, test.labels)
    return found


def _classifier(encoder, support, names: bool, weight: dict, embeddings=None) -> FewShotClassifier:
    options = {"label_text": "names", **weight} if names else {}
    return FewShotClassifier(encoder, batch_size=128, show_progress=False, **options).add_examples(
        support.texts, support.labels, embeddings=embeddings
    )


def _frozen(encoder, support, embeddings, test, weight: dict, sweep: bool) -> dict:
    """Frozen prototypes / logistic, without and with names (and by label_weight with ``sweep``)."""
    support_embeddings = _encode(encoder, support.texts)
    cell = {}
    for key, names in (("frozen", False), ("frozen_names", True)):
        classifier = _classifier(encoder, support, names, weight, support_embeddings)
        cell[key] = _both_heads(classifier, embeddings, test.labels)
    if sweep:
        cell["sweep"] = {}
        for value in SWEEP_WEIGHTS:
            classifier = _classifier(encoder, support, True, {"label_weight": value}, support_embeddings)
            cell["sweep"][value] = _both_heads(classifier, embeddings, test.labels)
    return cell


def _both_heads(classifier: FewShotClassifier, embeddings: np.ndarray, labels: list) -> dict:
    results = {}
    for strategy in ("prototype", "logistic"):
        classifier.strategy = strategy
        results[strategy] = _accuracy(classifier, embeddings, labels)
    classifier.strategy = "prototype"
    return results


def _accuracy(classifier, embeddings, labels) -> float:
    return round(classification_metrics(labels, classifier.predict(embeddings))["accuracy"], 2)


def _encode(encoder, texts: list[str]) -> np.ndarray:
    return encoder.encode(texts, batch_size=128, normalize=True, show_progress=False)


def _oos_sets(args, test) -> dict:
    sets = {split: load_clinc150(split, data_dir=args.data_dir) for split in ("val", "oos_val", "test", "oos_test")}
    return sets | {args.eval_split: test, "eval": test}  # the eval split is the same object: encoded once


def _oos_embeddings(encoder, oos: dict, eval_embeddings: np.ndarray) -> dict:
    """The embeddings of val, oos_val, test and oos_test (the eval split's already computed)."""
    found = {split: eval_embeddings for split in ("val", "test") if oos[split] is oos["eval"]}
    return found | {
        split: _encode(encoder, oos[split].texts)
        for split in ("val", "oos_val", "test", "oos_test")
        if split not in found
    }


def _out_of_scope(classifier: FewShotClassifier, oos: dict, embeddings: dict) -> dict:
    """Threshold chosen on val + oos_val (balanced), then in-scope accuracy and OOS recall on test + oos_test."""
    tune = np.concatenate([embeddings["val"], embeddings["oos_val"]])
    tune_labels = oos["val"].labels + [classifier.unknown_label] * len(oos["oos_val"])
    classifier.fit_threshold(tune, tune_labels)
    inside = classifier.predict(embeddings["test"])
    outside = classifier.predict(embeddings["oos_test"])
    classifier.threshold = None
    return {
        "in_scope_accuracy": round(
            100 * float(np.mean([p == t for p, t in zip(inside, oos["test"].labels, strict=True)])), 2
        ),
        "oos_recall": round(100 * float(np.mean([p == classifier.unknown_label for p in outside])), 2),
    }


def _setfit(args, support, test, seed: int) -> dict:
    """SetFit's default recipe on the same support sample; accuracy on the same texts."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    classes = sorted(set(support.labels))
    index = {label: i for i, label in enumerate(classes)}
    model = SetFitModel.from_pretrained(str(resolve_model_path(args.model)), device="cpu")
    train = Dataset.from_dict({"text": support.texts, "label": [index[label] for label in support.labels]})
    options = {"report_to": "none", "show_progress_bar": False, "save_strategy": "no", "seed": seed}
    trainer = Trainer(
        model=model,
        args=TrainingArguments(num_iterations=args.setfit_iterations, **options),
        train_dataset=train,
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    predicted = [classes[int(i)] for i in model.predict(test.texts, batch_size=128)]
    return {
        "accuracy": round(classification_metrics(test.labels, predicted)["accuracy"], 2),
        "seconds": round(seconds, 1),
    }


def _oos_line(result: dict) -> str:
    return f"in-scope accuracy {result['in_scope_accuracy']:.2f}, OOS recall {result['oos_recall']:.2f}"


def _print_cell(cell: dict) -> None:
    head = f"{cell['shots']}-shot seed {cell['seed']}:" if cell["shots"] else ""
    for key, value in cell.items():
        if key in ("shots", "seed"):
            continue
        if key == "sweep":
            for weight, heads in value.items():
                print(f"{head} frozen, label_weight {weight}: {heads['prototype']:.2f} / {heads['logistic']:.2f}")
        elif key.endswith("_oos"):
            print(f"{head} {key}: {_oos_line(value)}")
        elif "prototype" in value:
            seconds = f" ({value['seconds']:.0f} s)" if "seconds" in value else ""
            print(f"{head} {key}: prototypes {value['prototype']:.2f} / logistic {value['logistic']:.2f}{seconds}")
        else:
            seconds = f" ({value['seconds']:.0f} s)" if "seconds" in value else ""
            oos_part = f"; out-of-scope: {_oos_line(value)}" if "oos_recall" in value else ""
            print(f"{head} {key}: accuracy {value['accuracy']:.2f}{seconds}{oos_part}")
    sys.stdout.flush()


def _print_summary(cells: list[dict], args) -> None:
    """One row per system and head, one column per shot count: mean over the seeds run (and each seed)."""
    rows = [
        ("frozen", "prototype"),
        ("frozen", "logistic"),
        ("frozen_names", "prototype"),
        ("frozen_names", "logistic"),
    ]
    rows += [(s, h) for s in ("tuned", "tuned+names-at-scoring", "tuned-names") for h in ("prototype", "logistic")]
    rows += [("setfit", "accuracy")]
    print(
        f"\n| system ({args.eval_split}, mean over seeds; each seed; mean train s) | "
        + " | ".join(f"{s}-shot" for s in args.shots)
        + " |"
    )
    print("|---|" + "---|" * len(args.shots))
    for system, head in rows:
        columns = []
        for shots in args.shots:
            found = [cell[system] for cell in cells if cell["shots"] == shots and system in cell]
            if not found:
                columns.append("")
                continue
            values = [entry[head] for entry in found]
            seconds = [entry["seconds"] for entry in found if "seconds" in entry]
            time_note = f"; {np.mean(seconds):.0f} s" if seconds else ""
            columns.append(f"{np.mean(values):.2f} ({' '.join(f'{v:.2f}' for v in values)}{time_note})")
        if any(columns):
            print(f"| {system} {head} | " + " | ".join(columns) + " |")


if __name__ == "__main__":
    main()
