"""Distances used by the margin losses (pairwise and full matrices)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from sentsim.validation import check_choice

DISTANCES = ("cosine", "euclidean")


def check_distance(name: str) -> str:
    check_choice("distance", name, DISTANCES)
    return name


def pair_distance(a: Tensor, b: Tensor, name: str) -> Tensor:
    """Distance of row i of ``a`` to row i of ``b``: ``(B,)``. Cosine distance is ``1 - cos``."""
    if name == "cosine":
        return 1 - F.cosine_similarity(a, b, dim=-1)
    return (a - b).pow(2).sum(-1).clamp(min=1e-12).sqrt()


def distance_matrix(a: Tensor, b: Tensor, name: str) -> Tensor:
    """Distance of every row of ``a`` to every row of ``b``: ``(A, B)``."""
    if name == "cosine":
        return 1 - F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1).clamp(min=1e-12).sqrt()
