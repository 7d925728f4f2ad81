"""In-batch negatives (InfoNCE / multiple-negatives ranking), gathered across GPUs under DDP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentsim.training.distributed import gather_batch, rank_and_world
from sentsim.validation import check_flag, check_int, positive_number


class InBatchNegativesLoss(nn.Module):
    """Cross-entropy of each anchor against every positive (and hard negative) of the batch.

    ``scores = cos(anchor_i, candidate_j) / temperature``; the right candidate of anchor i is
    positive i, all others are negatives. Under DDP the candidates of every rank are gathered
    (local gradients kept), so the negatives are those of the global batch.

    Inputs:
        | columns | labels |
        |---|---|
        | anchor, positive [, negative] | optional group ids ``(B,)``: rows of one group are never each other's negatives; or multi-hot ``(B, C)``: rows sharing any class are not |

    The training loop passes as labels a hash of each positive text, so a text repeated in
    a batch is never its own negative; the few-shot fine-tuning passes class ids (multi-hot
    classes for a multi-label support set).

    Relations: the loss of SimCSE / multiple-negatives ranking; ``symmetric=True`` adds the
    positive -> anchor direction (as in CLIP). TripletLoss uses one negative per anchor.

    Args:
        temperature: softmax temperature (0.05 = scale 20).
        symmetric: also classify each positive's anchor among all anchors.
        gather: gather candidates across DDP ranks (ignored without torch.distributed).
        mini_batch_size: train with cached in-batch negatives (GradCache): the trainer embeds the
            batch this many rows at a time, without gradients, takes the loss's gradient on the
            whole batch, then re-embeds each mini-batch with gradients (:mod:`sentsim.training.cached`).
            The same gradients as without it, with the activation memory of a mini-batch, at the cost
            of a second forward pass; so batches of 1,024+ fit. None: one forward for the batch.
    """

    columns = ("anchor", "positive", "negative")
    optional_columns = ("negative",)
    target = "group"
    masks_negatives = True  # takes negative_labels: a hard negative equal to a row's positive is not its negative

    def __init__(
        self,
        temperature: float = 0.05,
        symmetric: bool = False,
        gather: bool = True,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature = positive_number("temperature", temperature)
        self.symmetric, self.gather = check_flag("symmetric", symmetric), check_flag("gather", gather)
        self.mini_batch_size = check_int("mini_batch_size", mini_batch_size, minimum=1, optional=True)

    def config(self) -> dict:
        """The settings, as a run records them (resuming with other settings is refused)."""
        cached = {} if self.mini_batch_size is None else {"mini_batch_size": self.mini_batch_size}
        return {"temperature": self.temperature, "symmetric": self.symmetric, "gather": self.gather, **cached}

    def forward(
        self,
        anchor: Tensor,
        positive: Tensor,
        negative: Tensor | None = None,
        labels: Tensor | None = None,
        negative_labels: Tensor | None = None,
    ) -> Tensor:
        """``negative_labels`` ``(len(negative),)``: group ids of the hard negatives (with ``(B,)``
        labels): a hard negative in a row's group is not that row's negative (the trainer passes
        text ids, so a mined negative that is another row's positive text does not count against it)."""
        anchor, positive = F.normalize(anchor.float(), dim=-1), F.normalize(positive.float(), dim=-1)
        negative = F.normalize(negative.float(), dim=-1) if negative is not None else None
        rank, world = rank_and_world() if self.gather else (0, 1)
        groups = labels if labels is not None else torch.arange(len(anchor), device=anchor.device) + rank * len(anchor)
        negative_groups = negative_labels if negative is not None and labels is not None else None
        all_anchors, all_positives, all_groups = anchor, positive, groups
        all_negatives, all_negative_groups = negative, negative_groups
        if world > 1:
            gathered = gather_batch(anchor, positive, groups, negative, negative_groups)
            all_anchors, all_positives, all_groups, all_negatives, all_negative_groups = gathered
        targets = torch.arange(len(anchor), device=anchor.device) + rank * len(anchor)  # (B,)
        extra = None if all_negatives is None else (all_negatives, all_negative_groups)
        loss = self._direction(anchor, all_positives, extra, groups, all_groups, targets)
        if self.symmetric:
            loss = (loss + self._direction(positive, all_anchors, None, groups, all_groups, targets)) / 2
        return loss

    def _direction(self, queries, candidates, extra, groups, candidate_groups, targets) -> Tensor:
        scores = queries @ candidates.T / self.temperature  # (B, world * B)
        same_group = _shared_group(groups, candidate_groups)  # (B, world * B)
        same_group[torch.arange(len(queries)), targets] = False  # the target itself stays
        scores = scores.masked_fill(same_group, float("-inf"))
        if extra is not None:
            negatives, negative_groups = extra
            extra_scores = queries @ negatives.T / self.temperature  # (B, world * B * n)
            if negative_groups is not None:
                extra_scores = extra_scores.masked_fill(_shared_group(groups, negative_groups), float("-inf"))
            scores = torch.cat([scores, extra_scores], dim=1)
        return F.cross_entropy(scores, targets)


def _shared_group(groups: Tensor, candidates: Tensor) -> Tensor:
    """True where a row and a candidate share a group: equal ids ``(B,)``, or any class of multi-hot ``(B, C)`` rows."""
    if groups.ndim == 2:
        return (groups.float() @ candidates.float().T) > 0
    return groups[:, None] == candidates[None, :]
