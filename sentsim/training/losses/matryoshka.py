"""Matryoshka representation learning (Kusupati et al., 2022): one loss at several truncations."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from sentsim.training.losses.contrastive import ContrastiveLoss
from sentsim.training.losses.cosent import CoSENTLoss
from sentsim.training.losses.cosine_similarity import CosineSimilarityLoss
from sentsim.training.losses.in_batch_negatives import InBatchNegativesLoss
from sentsim.training.losses.triplet import TripletLoss
from sentsim.truncation import check_dims, truncate
from sentsim.validation import positive_number

INNER_LOSSES = (CosineSimilarityLoss, CoSENTLoss, ContrastiveLoss, TripletLoss, InBatchNegativesLoss)


class MatryoshkaLoss(nn.Module):
    """``sum_k weight_k * inner(truncate(anchor, d_k), truncate(positive, d_k), ...)``.

    Each embedding is cut to its first ``d_k`` dimensions and L2-normalized again, for every
    ``d_k`` of ``dims``, and the inner loss applied to each cut; so the leading dimensions learn to
    carry the meaning and the trained model can be truncated (``encode(..., truncate_dim=64)``)
    with little loss of quality. The trainer records ``dims`` in the saved model.

    Inputs:
        | columns | labels |
        |---|---|
        | those of the inner loss | those of the inner loss |

    Relations: wraps any of CosineSimilarityLoss, CoSENTLoss, ContrastiveLoss, TripletLoss and
    InBatchNegativesLoss (whose ``mini_batch_size`` it keeps: the cached step then computes every
    truncation's loss on the cached embeddings of the whole batch).

    Args:
        inner_loss: the loss applied at each dimension.
        dims: the dimensions to train, strictly descending; the first is usually the model's full
            dimension (the trainer refuses one above it).
        weights: one positive weight per dimension (default: 1 each).
    """

    def __init__(
        self,
        inner_loss: nn.Module,
        dims: Sequence[int] = (384, 256, 128, 64),
        weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(inner_loss, INNER_LOSSES):
            names = ", ".join(loss.__name__ for loss in INNER_LOSSES)
            raise TypeError(f"inner_loss must be a {names} (an instance), got {type(inner_loss).__name__}")
        self.inner = inner_loss
        self.dims = check_dims(dims)
        if weights is None:
            weights = [1.0] * len(self.dims)
        if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or len(weights) != len(self.dims):
            raise ValueError(f"weights must be a list of {len(self.dims)} numbers, one per dimension, got {weights!r}")
        self.weights = tuple(positive_number(f"weights[{i}]", weight) for i, weight in enumerate(weights))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.inner.columns

    @property
    def optional_columns(self) -> tuple[str, ...]:
        return getattr(self.inner, "optional_columns", ())

    @property
    def target(self) -> str | None:
        return self.inner.target

    @property
    def score_bounds(self) -> tuple[float, float] | None:
        return getattr(self.inner, "score_bounds", None)

    @property
    def masks_negatives(self) -> bool:
        return getattr(self.inner, "masks_negatives", False)

    @property
    def mini_batch_size(self) -> int | None:
        """The inner loss's (cached in-batch negatives), else None."""
        return getattr(self.inner, "mini_batch_size", None)

    def config(self) -> dict:
        """The settings, as a run records them (resuming with other settings is refused)."""
        return {
            "inner": type(self.inner).__name__,
            "inner_config": self.inner.config(),
            "dims": list(self.dims),
            "weights": list(self.weights),
        }

    def forward(
        self,
        anchor: Tensor,
        positive: Tensor,
        negative: Tensor | None = None,
        labels: Tensor | None = None,
        **options: Tensor,
    ) -> Tensor:
        if self.dims[0] > anchor.shape[-1]:
            raise ValueError(f"MatryoshkaLoss dims {list(self.dims)} go above the {anchor.shape[-1]} dimensions given")
        total = 0.0
        for dim, weight in zip(self.dims, self.weights, strict=True):
            cut = [
                None if x is None else truncate(x.float(), dim, normalize=True) for x in (anchor, positive, negative)
            ]
            total = total + weight * self.inner(*cut, labels, **options)  # each embedding (B, dim)
        return total


def trained_dims(loss, dim: int) -> tuple[int, ...] | None:
    """The dimensions a MatryoshkaLoss trains (None for another loss), or a ValueError when they go
    above ``dim``, the model's embedding dimension."""
    if not isinstance(loss, MatryoshkaLoss):
        return None
    return check_dims(loss.dims, name="MatryoshkaLoss dims", maximum=dim)
