"""Binary decision metrics on similarity scores: thresholds, accuracy/F1, AP, calibration."""

from __future__ import annotations

import numpy as np

from sentsim.validation import check_choice, check_int

OBJECTIVES = ("accuracy", "f1")


def check_binary(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores as float64 and labels as int64, or a ValueError for bad input."""
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    if scores.size == 0:
        raise ValueError("no examples to evaluate")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {sorted(set(labels.tolist()) - {0, 1})[:5]}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    return scores, labels.astype(np.int64)


def require_both_classes(labels: np.ndarray) -> None:
    if labels.min() == labels.max():
        raise ValueError(f"labels hold a single class ({int(labels[0])}); need both 0 and 1")


def best_threshold(scores: np.ndarray, labels: np.ndarray, objective: str = "accuracy") -> float:
    """The threshold (predict 1 when ``score >= threshold``) that maximizes ``objective`` on this data.

    Candidates lie midway between consecutive distinct scores, so the threshold generalizes
    to unseen scores; ties go to the higher threshold.
    """
    check_choice("objective", objective, OBJECTIVES)
    scores, labels = check_binary(scores, labels)
    require_both_classes(labels)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_run = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]  # cut after these positions
    true_positives = np.cumsum(sorted_labels)[last_of_run]
    predicted = (np.flatnonzero(last_of_run) + 1).astype(np.float64)
    positives, n = labels.sum(), labels.size
    false_positives = predicted - true_positives
    if objective == "accuracy":
        values = (true_positives + (n - positives - false_positives)) / n
        nothing = (n - positives) / n
    else:
        values = 2 * true_positives / (predicted + positives)
        nothing = 0.0
    distinct = sorted_scores[last_of_run]  # descending
    below = np.r_[distinct[1:], distinct[-1] - 1.0]
    thresholds = (distinct + below) / 2
    best = int(np.argmax(values))
    if nothing > values[best]:
        return float(distinct[0] + 1.0)
    return float(thresholds[best])


def binary_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 (x 100) of 0/1 predictions; 0 where undefined."""
    predictions, labels = np.asarray(predictions).astype(np.int64).ravel(), np.asarray(labels).astype(np.int64).ravel()
    tp = int(((predictions == 1) & (labels == 1)).sum())
    fp = int(((predictions == 1) & (labels == 0)).sum())
    fn = int(((predictions == 0) & (labels == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {
        "accuracy": 100 * float((predictions == labels).mean()),
        "precision": 100 * precision,
        "recall": 100 * recall,
        "f1": 100 * f1,
    }


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (x 100): the precision at each distinct threshold, weighted by the recall gained."""
    scores, labels = check_binary(scores, labels)
    require_both_classes(labels)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_run = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    true_positives = np.cumsum(sorted_labels)[last_of_run]
    predicted = np.flatnonzero(last_of_run) + 1
    precision = true_positives / predicted
    recall = true_positives / labels.sum()
    return 100 * float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def check_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`check_binary`, and every probability in [0, 1]."""
    probabilities, labels = check_binary(probabilities, labels)
    outside = np.flatnonzero((probabilities < 0) | (probabilities > 1))
    if outside.size:
        raise ValueError(f"probability {int(outside[0])} is {probabilities[outside[0]]}; probabilities lie in [0, 1]")
    return probabilities, labels


def brier_score(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error of probabilities against 0/1 outcomes (0 is perfect)."""
    probabilities, labels = check_probabilities(probabilities, labels)
    return float(np.mean((probabilities - labels) ** 2))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE: the gap between mean probability and observed frequency, over ``bins`` equal-width bins,
    weighted by how many examples fall in each bin (0 is perfect)."""
    check_int("bins", bins, minimum=1)
    probabilities, labels = check_probabilities(probabilities, labels)
    which = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(probabilities[members].mean() - labels[members].mean())
    return float(error)
