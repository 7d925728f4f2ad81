"""Distillation: MSE between the student's embedding and the teacher's."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class EmbeddingMSELoss(nn.Module):
    """``mean((student(text) - teacher_embedding) ** 2)``.

    Inputs:
        | columns | labels |
        |---|---|
        | text | the teacher's embedding of the text (column ``embedding``) |

    Relations: knowledge distillation (Reimers & Gurevych, 2020): the student learns to place
    texts where the teacher does, from unlabelled sentences; fine-tune on pairs afterwards.
    """

    columns = ("text",)
    target = "embedding"

    def config(self) -> dict:
        """The settings, as a run records them: none."""
        return {}

    def forward(
        self,
        anchor: Tensor,
        positive: Tensor | None = None,
        negative: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        if labels is None:
            raise ValueError("EmbeddingMSELoss needs the teacher's embeddings")
        return F.mse_loss(anchor.float(), labels.float())
