"""Cosine-similarity regression: MSE between cos(a, b) and a gold score."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class CosineSimilarityLoss(nn.Module):
    """``mean((cos(sentence1, sentence2) - score) ** 2)``.

    Inputs:
        | columns | labels |
        |---|---|
        | sentence1, sentence2 | score in [0, 1] (rescale 0-5 scores with ``score_range``) |

    Relations: the objective of the original Siamese STS models (SBERT regression); CoSENT
    optimizes only the ranking of pairs and usually does better.
    """

    columns = ("sentence1", "sentence2")
    target = "score"
    score_bounds = (-1.0, 1.0)

    def config(self) -> dict:
        """The settings, as a run records them: none."""
        return {}

    def forward(
        self, anchor: Tensor, positive: Tensor, negative: Tensor | None = None, labels: Tensor | None = None
    ) -> Tensor:
        if labels is None:
            raise ValueError("CosineSimilarityLoss needs a score per pair")
        cosine = F.cosine_similarity(anchor, positive, dim=-1)  # (B,)
        return F.mse_loss(cosine.float(), labels.float())
