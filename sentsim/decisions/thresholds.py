"""Decision thresholds tuned on labelled validation texts: one "none of these" threshold on the best
class score (single-label), or one threshold per class (multi-label)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

__all__ = ["out_of_scope_threshold", "tune_class_thresholds"]

logger = logging.getLogger(__name__)


def out_of_scope_threshold(best_score: np.ndarray, correct: np.ndarray, out: np.ndarray, objective: str) -> float:
    """The threshold on the best class score that maximizes ``objective`` over the tuning texts.

    A text is right when in scope, ``correct`` and its score ``>= t``, or out of scope (``out``)
    and its score ``< t``. ``balanced``: mean of in-scope accuracy and out-of-scope recall;
    ``accuracy``: share right over all texts.
    """
    candidates = np.unique(np.r_[best_score, best_score.max() + 1e-6])
    in_right = np.array([(correct & ~out & (best_score >= t)).sum() for t in candidates])
    out_right = np.array([(out & (best_score < t)).sum() for t in candidates])
    if objective == "balanced":
        values = in_right / (~out).sum() + out_right / out.sum()
    else:
        values = (in_right + out_right) / len(out)
    return float(candidates[int(np.argmax(values))])


def tune_class_thresholds(scores: np.ndarray, targets: np.ndarray, classes: Sequence[object]) -> np.ndarray:
    """One threshold per class (``score >= threshold`` predicts it), maximizing that class's F1.

    Each threshold sits halfway between two neighbouring scores, so it does not rest on one
    tuning example. A class with no positive example in the tuning data gets the median of the
    others' thresholds (with a warning); with none at all, a ValueError.
    """
    thresholds = np.full(scores.shape[1], np.nan)
    for c in range(scores.shape[1]):
        positives = int(targets[:, c].sum())
        if positives == 0:
            continue
        order = np.argsort(-scores[:, c], kind="stable")
        ranked, hits = scores[order, c], targets[order, c]
        true_positives = np.cumsum(hits)
        f1 = 2 * true_positives / (np.arange(1, len(ranked) + 1) + positives)  # predicting the top i+1
        cut = np.r_[ranked[1:] < ranked[:-1], True]  # only between distinct scores
        best = int(np.flatnonzero(cut)[np.argmax(f1[cut])])
        thresholds[c] = (ranked[best] + ranked[best + 1]) / 2 if best + 1 < len(ranked) else ranked[best] - 1e-6
    missing = np.isnan(thresholds)
    if missing.all():
        raise ValueError("the tuning data has no positive example of any class")
    if missing.any():
        shown = ", ".join(repr(classes[c]) for c in np.flatnonzero(missing)[:5])
        logger.warning(
            "%d class(es) have no example in the tuning data (%s); they get the median threshold of the others",
            int(missing.sum()),
            shown,
        )
        thresholds[missing] = float(np.median(thresholds[~missing]))
    return thresholds
