"""STS evaluation: correlation of embedding similarity with human scores."""

from __future__ import annotations

import numpy as np

from sentsim.data.sts import SentencePairs
from sentsim.evaluation.correlation import pearson, spearman
from sentsim.similarity import Metric, similarity


def evaluate_sts(encoder, pairs: SentencePairs, *, batch_size: int = 64, show_progress: bool | None = None) -> dict:
    """Spearman and Pearson x 100 of each metric's similarity against the gold scores.

    Returns ``{"spearman", "pearson"}`` for cosine (``spearman`` is the primary metric), the
    same for every metric as ``"<metric>_spearman"`` / ``"<metric>_pearson"``, ``"n"`` and
    ``"primary_metric"``. Each distinct sentence is encoded once.
    """
    unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    index = {text: i for i, text in enumerate(unique)}
    embeddings = encoder.encode(unique, batch_size=batch_size, show_progress=show_progress)
    left = embeddings[[index[text] for text in pairs.sentences1]]  # (n, d)
    right = embeddings[[index[text] for text in pairs.sentences2]]  # (n, d)
    results: dict = {"n": len(pairs), "primary_metric": "spearman"}
    for metric in Metric:
        scores = np.asarray(similarity(left, right, metric, pairwise=True))
        results[f"{metric.value}_spearman"] = 100 * spearman(scores, pairs.scores)
        results[f"{metric.value}_pearson"] = 100 * pearson(scores, pairs.scores)
    results["spearman"] = results["cosine_spearman"]
    results["pearson"] = results["cosine_pearson"]
    return results
