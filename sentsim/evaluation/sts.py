"""STS evaluation: correlation of embedding similarity with human scores."""

from __future__ import annotations

import numpy as np

from sentsim.data.sts import SentencePairs
from sentsim.evaluation.correlation import pearson, spearman
from sentsim.evaluation.encoding import encode_columns
from sentsim.similarity import Metric, similarity
from sentsim.validation import check_instance


def check_sts_pairs(pairs: SentencePairs) -> None:
    """A TypeError unless ``pairs`` is :class:`SentencePairs`, a ValueError unless they can be scored: at least 2 pairs whose gold scores (finite, as
    :class:`SentencePairs` checks) are not all equal. Run before training, so that an evaluation
    set that cannot be scored fails before the first step."""
    check_instance("pairs", pairs, SentencePairs, "load_stsb or read_sts")
    if len(pairs) < 2:
        raise ValueError(f"STS evaluation needs at least 2 pairs, got {len(pairs)}")
    if np.all(pairs.scores == pairs.scores[0]):
        raise ValueError(f"all {len(pairs)} gold scores equal {pairs.scores[0]}; correlation is undefined")


def evaluate_sts(encoder, pairs: SentencePairs, *, batch_size: int = 64, show_progress: bool | None = None) -> dict:
    """Spearman and Pearson x 100 of each metric's similarity against the gold scores.

    Returns ``spearman`` and ``pearson`` for cosine (``spearman`` is the primary metric),
    ``<metric>_spearman`` / ``<metric>_pearson`` for every metric, ``n`` and
    ``primary_metric``. Gold scores that are all equal raise a ValueError (correlation is
    undefined); similarities that are all equal, up to float rounding (a collapsed model), correlate 0.
    """
    check_sts_pairs(pairs)
    left, right = encode_columns(
        encoder, pairs.sentences1, pairs.sentences2, batch_size=batch_size, show_progress=show_progress
    )
    results: dict = {"n": len(pairs), "primary_metric": "spearman"}
    for metric in Metric:
        scores = np.asarray(similarity(left, right, metric, pairwise=True), dtype=np.float64)
        constant = np.allclose(scores, scores[0], rtol=1e-6, atol=1e-7)  # float noise is not signal
        results[f"{metric.value}_spearman"] = 0.0 if constant else 100 * spearman(scores, pairs.scores)
        results[f"{metric.value}_pearson"] = 0.0 if constant else 100 * pearson(scores, pairs.scores)
    results["spearman"] = results["cosine_spearman"]
    results["pearson"] = results["cosine_pearson"]
    return results
