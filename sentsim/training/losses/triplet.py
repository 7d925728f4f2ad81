"""Triplet margin loss, with optional batch-hard negative mining."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentsim.training.distributed import gather_batch
from sentsim.training.losses.distances import check_distance, distance_matrix, pair_distance
from sentsim.validation import check_flag, positive_number


class TripletLoss(nn.Module):
    """``mean(max(0, d(anchor, positive) - d(anchor, negative) + margin))``.

    Inputs:
        | columns | labels |
        |---|---|
        | anchor, positive, negative | with ``batch_hard``, optional group ids: a row's positive is never mined as a negative for rows of its group |

    ``negative`` may hold ``n`` negatives per anchor (``(B * n, D)``, each anchor's together, from
    the columns ``negative_1`` ... ``negative_n``): each makes a triplet with its anchor (with
    ``batch_hard``, each is a candidate for every anchor).

    Relations: with ``batch_hard=True`` each anchor's negative is the closest of every
    negative and every other row's positive in the batch (its hardest in-batch negative);
    InBatchNegativesLoss uses all of them at once through a softmax instead of the hardest.
    The training loop passes as labels a hash of each positive text, so a positive repeated in a
    batch is never mined as a negative of its copies' anchors (it would sit at the positive's own
    distance: a wasted triplet whose loss is the margin).

    Args:
        margin: how much closer the positive must be (5 for euclidean, 0.5 for cosine are common).
        distance: ``"euclidean"`` or ``"cosine"`` (``1 - cos``).
        batch_hard: mine the hardest in-batch negative for each anchor (under DDP, in the global batch).
        gather: with ``batch_hard``, mine in the batches of every DDP rank together (needs every
            rank to call the loss; ignored without torch.distributed).
    """

    columns = ("anchor", "positive", "negative")

    def __init__(
        self, margin: float = 5.0, distance: str = "euclidean", batch_hard: bool = False, gather: bool = True
    ) -> None:
        super().__init__()
        self.margin = positive_number("margin", margin, allow_zero=True)
        self.distance, self.batch_hard = check_distance(distance), check_flag("batch_hard", batch_hard)
        self.gather = check_flag("gather", gather)
        self.target = "group" if self.batch_hard else None  # mining: group ids keep copies of a positive apart

    def config(self) -> dict:
        """The settings, as a run records them (resuming with other settings is refused)."""
        return {"margin": self.margin, "distance": self.distance, "batch_hard": self.batch_hard, "gather": self.gather}

    def forward(
        self, anchor: Tensor, positive: Tensor, negative: Tensor | None = None, labels: Tensor | None = None
    ) -> Tensor:
        if negative is None:
            raise ValueError("TripletLoss needs a negative for each anchor")
        anchor, positive, negative = anchor.float(), positive.float(), negative.float()
        groups = labels if self.batch_hard else None
        if self.batch_hard and self.gather:  # mined in the global batch under DDP
            anchor, positive, negative, groups = gather_batch(anchor, positive, negative, groups)
        to_positive = pair_distance(anchor, positive, self.distance)  # (B,)
        if self.batch_hard:
            if groups is None:
                groups = torch.arange(len(anchor), device=anchor.device)
            candidates = torch.cat([negative, positive])  # (B * n + B, D)
            distances = distance_matrix(anchor, candidates, self.distance)  # (B, B * n + B)
            same_group = groups[:, None] == groups[None, :]  # (B, B): positive j belongs with anchor i
            any_negative = torch.zeros(len(anchor), len(negative), dtype=torch.bool, device=anchor.device)
            excluded = torch.cat([any_negative, same_group], dim=1)  # (B, B * n + B)
            to_negative = distances.masked_fill(excluded, float("inf")).min(dim=1).values[:, None]  # (B, 1)
        else:  # n negatives per anchor (negative_1 ... negative_n): a triplet each
            per_anchor = len(negative) // len(anchor)
            to_negative = pair_distance(anchor.repeat_interleave(per_anchor, dim=0), negative, self.distance)
            to_negative = to_negative.view(len(anchor), per_anchor)  # (B, n)
        return F.relu(to_positive[:, None] - to_negative + self.margin).mean()
