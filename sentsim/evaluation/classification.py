"""Classification metrics: accuracy and macro-F1, with out-of-scope detection; micro/macro-F1 and
subset accuracy for multi-label classification."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentsim.data.columns import class_column, label_set_column, plain_list
from sentsim.validation import validate_texts


def classification_metrics(true: Sequence, predicted: Sequence) -> dict[str, float]:
    """Accuracy and macro-F1 (x 100); macro-F1 averages over every label seen in ``true`` or ``predicted``."""
    true, predicted = plain_list(true), plain_list(predicted)
    for name, labels in (("true", true), ("predicted", predicted)):
        missing = next((row for row, label in enumerate(labels) if _missing(label)), None)
        if missing is not None:  # NaN != NaN: it would score a NaN macro-F1
            raise ValueError(f"{name} label {missing} is missing ({labels[missing]!r})")
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true labels but {len(predicted)} predictions")
    if len(true) == 0:
        raise ValueError("no examples to evaluate")
    true_a, predicted_a = np.asarray(true, dtype=object), np.asarray(predicted, dtype=object)
    f1s = []
    for label in set(true) | set(predicted):
        tp = np.sum((predicted_a == label) & (true_a == label))
        fp = np.sum((predicted_a == label) & (true_a != label))
        fn = np.sum((predicted_a != label) & (true_a == label))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": 100 * float(np.mean(true_a == predicted_a)), "macro_f1": 100 * float(np.mean(f1s))}


def multi_label_metrics(true: Sequence, predicted: Sequence) -> dict[str, float]:
    """Micro-F1, macro-F1 and subset accuracy (x 100) of label sets (one list of labels per text).

    Micro-F1 pools every (text, label) decision; macro-F1 averages the F1 of every label seen in
    ``true`` or ``predicted``; subset accuracy counts texts whose predicted set equals the true set.
    """
    true = label_set_column(plain_list(true), "true", "multi_label_metrics", allow_empty=True)
    predicted = label_set_column(plain_list(predicted), "predicted", "multi_label_metrics", allow_empty=True)
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true label sets but {len(predicted)} predictions")
    if len(true) == 0:
        raise ValueError("no examples to evaluate")
    true_sets, predicted_sets = [set(row) for row in true], [set(row) for row in predicted]
    labels = set().union(*true_sets, *predicted_sets)
    counts = {label: [0, 0, 0] for label in labels}  # tp, fp, fn
    for gold, guess in zip(true_sets, predicted_sets, strict=True):
        for label in guess & gold:
            counts[label][0] += 1
        for label in guess - gold:
            counts[label][1] += 1
        for label in gold - guess:
            counts[label][2] += 1
    tp, fp, fn = (sum(count[i] for count in counts.values()) for i in range(3))
    f1s = [2 * t / (2 * t + p + n) if t + p + n else 1.0 for t, p, n in counts.values()]
    return {
        "micro_f1": 100 * (2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0),
        "macro_f1": 100 * float(np.mean(f1s)) if f1s else 100.0,
        "subset_accuracy": 100 * float(np.mean([g == p for g, p in zip(true_sets, predicted_sets, strict=True)])),
    }


def evaluate_classifier(
    classifier, texts: Sequence[str], labels: Sequence, *, out_of_scope: Sequence[str] = ()
) -> dict:
    """Accuracy and macro-F1 of ``classifier.predict`` on in-scope ``texts``; with ``out_of_scope``
    texts, also ``oos_recall`` (share answered "none of these") and ``oos_precision``.

    ``accuracy`` (primary) counts in-scope texts only, so a "none of these" answer to one of
    them is an error. A multi-label classifier (``labels`` are label sets) is scored by
    :func:`multi_label_metrics` instead (primary: ``micro_f1``); texts of no class have an empty set.
    """
    texts, out_of_scope = validate_texts(texts), validate_texts(out_of_scope, "out_of_scope")
    if getattr(classifier, "multi_label", False):
        if out_of_scope:
            raise ValueError(
                "a multi-label classifier answers an empty label set for out-of-scope texts: give them as texts"
            )
        if len(labels) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(labels)} label sets")
        results = multi_label_metrics(labels, classifier.predict(texts))
        return results | {"n": len(texts), "primary_metric": "micro_f1"}
    labels = class_column(labels, "labels", "evaluate_classifier")
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    predicted = list(classifier.predict(texts + out_of_scope))
    results: dict = classification_metrics(labels, predicted[: len(texts)])
    results |= {"n": len(texts), "primary_metric": "accuracy"}
    if out_of_scope:
        unknown = classifier.unknown_label
        flagged_in = sum(label == unknown for label in predicted[: len(texts)])
        flagged_out = sum(label == unknown for label in predicted[len(texts) :])
        results["oos_recall"] = 100 * flagged_out / len(out_of_scope)
        results["oos_precision"] = 100 * flagged_out / (flagged_in + flagged_out) if flagged_in + flagged_out else 0.0
        results["n_out_of_scope"] = len(out_of_scope)
    return results


def _missing(label: object) -> bool:
    """None, NaN or pandas' NA."""
    return label is None or (isinstance(label, float) and label != label) or type(label).__name__ == "NAType"
