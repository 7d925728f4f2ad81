"""CoSENT: a ranking loss over all pairs of pairs in the batch (Su, 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentsim.training.distributed import gather_batch
from sentsim.validation import check_flag, positive_number


class CoSENTLoss(nn.Module):
    """``log(1 + sum over (i, j) with score_i > score_j of exp(scale * (cos_j - cos_i)))``.

    Inputs:
        | columns | labels |
        |---|---|
        | sentence1, sentence2 | score (only the order of scores matters) |

    Relations: like CosineSimilarityLoss it learns from scored pairs, but it asks only that
    higher-scored pairs get higher cosines, which converges faster and scores higher on STS.

    Under DDP the pairs of every rank are ranked together, as in one process with the global batch.

    Args:
        scale: inverse temperature applied to cosine differences (20 as in the paper).
        gather: rank the pairs of every DDP rank together (needs every rank to call the loss;
            ignored without torch.distributed).
    """

    columns = ("sentence1", "sentence2")
    target = "score"

    def __init__(self, scale: float = 20.0, gather: bool = True) -> None:
        super().__init__()
        self.scale = positive_number("scale", scale)
        self.gather = check_flag("gather", gather)

    def config(self) -> dict:
        """The settings, as a run records them (resuming with other settings is refused)."""
        return {"scale": self.scale, "gather": self.gather}

    def forward(
        self, anchor: Tensor, positive: Tensor, negative: Tensor | None = None, labels: Tensor | None = None
    ) -> Tensor:
        if labels is None:
            raise ValueError("CoSENTLoss needs a score per pair")
        cosine = F.cosine_similarity(anchor.float(), positive.float(), dim=-1) * self.scale  # (B,)
        if self.gather:
            cosine, labels = gather_batch(cosine, labels)  # (world * B,)
        differences = cosine[None, :] - cosine[:, None]  # (B, B): cos_j - cos_i
        ordered = labels[:, None] > labels[None, :]  # score_i > score_j
        differences = differences.masked_fill(~ordered, float("-inf")).flatten()
        return torch.logsumexp(torch.cat([differences.new_zeros(1), differences]), dim=0)
