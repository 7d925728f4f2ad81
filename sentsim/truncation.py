"""Matryoshka truncation: the first ``d`` dimensions of an embedding, re-normalized.

A model trained with :class:`~sentsim.training.losses.MatryoshkaLoss` packs the most useful
information into the leading dimensions, so its embeddings can be cut to 256, 128 or 64
dimensions for a smaller, faster index. A saved model records the dimensions it was trained
for (``matryoshka_dims`` in ``config_sentsim.json``); cutting any other model still works, with
one warning, but it loses more quality.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from sentsim.validation import check_int, is_integer

__all__ = ["check_dims", "check_truncate_dim", "truncate", "untrained_truncation"]


def check_dims(dims: object, *, name: str = "dims", maximum: int | None = None) -> tuple[int, ...]:
    """``dims`` as a tuple of ints, or an error naming ``name``: a non-empty list of dimensions
    >= 1, strictly descending (the full dimension first), none above ``maximum`` (the model's)."""
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or not dims:
        raise TypeError(f"{name} must be a non-empty list of ints such as [384, 256, 128, 64], got {dims!r}")
    for index, dim in enumerate(dims):
        if not is_integer(dim) or dim < 1:
            raise ValueError(f"{name}[{index}] must be an int >= 1, got {dim!r}")
    dims = tuple(int(dim) for dim in dims)
    if any(later >= earlier for earlier, later in zip(dims[:-1], dims[1:], strict=True)):
        raise ValueError(f"{name} must be strictly descending (largest first), got {list(dims)}")
    if maximum is not None and dims[0] > maximum:
        raise ValueError(f"{name} {list(dims)} go above the model's {maximum} dimensions")
    return dims


def check_truncate_dim(value: object, dim: int) -> int | None:
    """``value`` (None: no truncation) as an int in ``[1, dim]``, or an error naming the model's dimension."""
    if value is not None and is_integer(value) and value > dim:
        raise ValueError(f"truncate_dim must be at most the model's {dim} dimensions, got {value}")
    return check_int("truncate_dim", value, minimum=1, optional=True)


def truncate(embeddings: Tensor, dim: int, *, normalize: bool) -> Tensor:
    """The first ``dim`` dimensions of ``embeddings`` ``(..., D)``, L2-normalized when ``normalize``."""
    embeddings = embeddings[..., :dim]  # (..., dim)
    return F.normalize(embeddings, dim=-1) if normalize else embeddings


def untrained_truncation(dim: int, full_dim: int, trained: tuple[int, ...] | None) -> str | None:
    """A warning when cutting a ``full_dim`` model to ``dim`` is not what it was trained for, else None."""
    if dim >= full_dim or (trained is not None and dim in trained):
        return None
    if trained is None:
        return (
            f"truncating embeddings to {dim} of {full_dim} dimensions: this model was not trained for truncation "
            "(MatryoshkaLoss), so its truncated embeddings lose more quality"
        )
    return (
        f"truncating embeddings to {dim} of {full_dim} dimensions: this model was trained for "
        f"{list(trained)}, not {dim}"
    )
