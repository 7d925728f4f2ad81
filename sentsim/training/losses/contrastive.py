"""Contrastive margin loss (Hadsell, Chopra & LeCun, 2006), with an online hard-pair variant."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentsim.training.distributed import gather_batch
from sentsim.training.losses.distances import check_distance, pair_distance
from sentsim.validation import check_flag, positive_number


class ContrastiveLoss(nn.Module):
    """``0.5 * [y * d^2 + (1 - y) * max(0, margin - d)^2]`` averaged over pairs.

    Similar pairs (label 1) are pulled together; dissimilar ones (0) pushed to at least
    ``margin`` apart.

    Inputs:
        | columns | labels |
        |---|---|
        | sentence1, sentence2 | label 0/1 |

    Relations: ``online=True`` keeps only the hard pairs of each batch (positives farther
    than the closest negative, negatives closer than the farthest positive), which often
    trains faster; TripletLoss compares a positive and a negative of the same anchor.

    Args:
        margin: distance beyond which dissimilar pairs cost nothing (0.5 suits cosine distance).
        distance: ``"cosine"`` (``1 - cos``) or ``"euclidean"``.
        online: use only the hard pairs of the batch (under DDP, of the global batch).
        gather: with ``online``, mine the pairs of every DDP rank together (needs every rank to
            call the loss; ignored without torch.distributed).
    """

    columns = ("sentence1", "sentence2")
    target = "label"

    def __init__(
        self, margin: float = 0.5, distance: str = "cosine", online: bool = False, gather: bool = True
    ) -> None:
        super().__init__()
        self.margin = positive_number("margin", margin)
        self.distance, self.online = check_distance(distance), check_flag("online", online)
        self.gather = check_flag("gather", gather)

    def config(self) -> dict:
        """The settings, as a run records them (resuming with other settings is refused)."""
        return {"margin": self.margin, "distance": self.distance, "online": self.online, "gather": self.gather}

    def forward(
        self, anchor: Tensor, positive: Tensor, negative: Tensor | None = None, labels: Tensor | None = None
    ) -> Tensor:
        if labels is None:
            raise ValueError("ContrastiveLoss needs a 0/1 label per pair")
        distances = pair_distance(anchor.float(), positive.float(), self.distance)  # (B,)
        similar = labels.float()
        if self.online:
            if self.gather:
                distances, labels = gather_batch(distances, labels)
            return self._online(distances, labels.bool())
        losses = similar * distances.pow(2) + (1 - similar) * F.relu(self.margin - distances).pow(2)
        return 0.5 * losses.mean()

    def _online(self, distances: Tensor, similar: Tensor) -> Tensor:
        positives, negatives = distances[similar], distances[~similar]
        hard_negatives = negatives[negatives < (positives.max() if len(positives) else distances.max() + 1)]
        hard_positives = positives[positives > (negatives.min() if len(negatives) else distances.min() - 1)]
        terms = torch.cat([hard_positives.pow(2), F.relu(self.margin - hard_negatives).pow(2)])
        return terms.sum() / max(len(terms), 1) if len(terms) else distances.sum() * 0.0
