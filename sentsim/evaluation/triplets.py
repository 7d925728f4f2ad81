"""Triplet evaluation: is the anchor closer to its positive than to its negative?"""

from __future__ import annotations

import numpy as np

from sentsim.data.triplets import Triplets
from sentsim.evaluation.encoding import encode_columns
from sentsim.similarity import Metric, similarity
from sentsim.validation import check_instance


def evaluate_triplets(encoder, triplets: Triplets, *, batch_size: int = 64, show_progress: bool | None = None) -> dict:
    """Accuracy (x 100) of ``sim(anchor, positive) > sim(anchor, negative)`` for every metric.

    ``accuracy`` (the primary metric) is the cosine one; a tie counts as wrong.
    """
    check_instance("triplets", triplets, Triplets, "read_triplets")
    if len(triplets) == 0:
        raise ValueError("no triplets to evaluate")
    anchors, positives, negatives = encode_columns(
        encoder,
        triplets.anchors,
        triplets.positives,
        triplets.negatives,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    results: dict = {"n": len(triplets), "primary_metric": "accuracy"}
    for metric in Metric:
        closer = np.asarray(similarity(anchors, positives, metric, pairwise=True)) > np.asarray(
            similarity(anchors, negatives, metric, pairwise=True)
        )
        results[f"{metric.value}_accuracy"] = 100 * float(np.mean(closer))
    results["accuracy"] = results["cosine_accuracy"]
    return results
