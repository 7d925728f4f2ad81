"""Pair classification: similar / dissimilar decided by a threshold on the similarity."""

from __future__ import annotations

import numpy as np

from sentsim.data.pairs import LabelledPairs
from sentsim.evaluation.binary import average_precision, best_threshold, binary_metrics, check_binary
from sentsim.evaluation.encoding import encode_columns
from sentsim.similarity import Metric, similarity
from sentsim.validation import check_instance, finite_or_none


def evaluate_pairs(
    encoder,
    pairs: LabelledPairs,
    *,
    metric: str | Metric = "cosine",
    threshold: float | None = None,
    objective: str = "accuracy",
    batch_size: int = 64,
    show_progress: bool | None = None,
) -> dict:
    """Accuracy, precision, recall, F1 and average precision (x 100) of ``score >= threshold``.

    Without ``threshold`` the best one for ``objective`` (accuracy or f1) is found on these
    pairs; to measure honestly, tune on dev and pass it for test. Returns those metrics,
    ``threshold``, ``metric``, ``n`` and ``primary_metric`` (``average_precision``, which
    needs no threshold).
    """
    check_instance("pairs", pairs, LabelledPairs, "read_pairs, or sts_pair_classification for scored pairs")
    metric = Metric.parse(metric)
    finite_or_none("threshold", threshold)
    scores = pair_scores(encoder, pairs.sentences1, pairs.sentences2, metric, batch_size, show_progress)
    scores, labels = check_binary(scores, pairs.labels)
    if threshold is None:
        threshold = best_threshold(scores, labels, objective)
    results = binary_metrics(scores >= threshold, labels)
    results["average_precision"] = average_precision(scores, labels)
    return results | {
        "threshold": float(threshold),
        "metric": metric.value,
        "n": len(pairs),
        "primary_metric": "average_precision",
    }


def pair_scores(
    encoder,
    left: list[str],
    right: list[str],
    metric: str | Metric = "cosine",
    batch_size: int = 64,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Similarity of each pair ``(left[i], right[i])`` as float64 ``(n,)``."""
    if len(left) != len(right):
        raise ValueError(f"pairwise scores need inputs of the same length; got {len(left)} and {len(right)}")
    a, b = encode_columns(encoder, left, right, batch_size=batch_size, show_progress=show_progress)
    return np.asarray(similarity(a, b, metric, pairwise=True), dtype=np.float64).reshape(-1)
