"""Similarity between embeddings: cosine, dot, euclidean and manhattan.

Every metric is returned as a *similarity*: higher means more similar. Distances are negated,
so ``euclidean`` gives ``-||a - b||_2`` and ``manhattan`` gives ``-||a - b||_1`` (0 for
identical vectors, negative otherwise).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sentsim.validation import Choice, check_flag

ArrayLike = np.ndarray | Tensor


class Metric(Choice):
    """Similarity metrics; distances are negated so that higher is always more similar."""

    COSINE = "cosine"
    DOT = "dot"
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"


def similarity(a: ArrayLike, b: ArrayLike, metric: str | Metric = "cosine", *, pairwise: bool = False) -> ArrayLike:
    """Similarity of embeddings ``a`` (n, d) and ``b`` (m, d); a 1-D input counts as one row.

    Returns the ``(n, m)`` matrix, or with ``pairwise=True`` the ``(n,)`` scores of row i of
    ``a`` against row i of ``b`` (which then need the same length); two 1-D inputs give one
    score. The result is numpy (a float for one score) unless both inputs are torch tensors:
    then it is a tensor (0-d for one score) that keeps their autograd graph, so it can sit in
    a loss. It is float64 on CPU if an input is, else float32.
    Embeddings holding NaN or infinity are refused.
    """
    metric = Metric.parse(metric)
    check_flag("pairwise", pairwise)
    as_numpy = not (isinstance(a, Tensor) and isinstance(b, Tensor))
    x, y = _as_matrix(a, "a"), _as_matrix(b, "b")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"embedding dimensions differ: a has {x.shape[1]}, b has {y.shape[1]}")
    if pairwise and x.shape[0] != y.shape[0]:
        raise ValueError(f"pairwise scores need inputs of the same length; got {x.shape[0]} and {y.shape[0]}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    if x.device.type != "cpu":  # float64 is slow on most GPUs and missing on MPS
        dtype = torch.float32
    x, y = x.to(dtype), y.to(x.device, dtype)
    scores = _pairwise(x, y, metric) if pairwise else _matrix(x, y, metric)
    if a.ndim == 1 and b.ndim == 1:
        return float(scores.reshape(-1)[0]) if as_numpy else scores.reshape(())
    return scores.detach().cpu().numpy() if as_numpy else scores


def _as_matrix(value: ArrayLike, name: str) -> Tensor:
    """``value`` as a 2-D float tensor (float64 stays float64, other types become float32)."""
    if isinstance(value, np.ndarray):
        if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_) or np.iscomplexobj(value):
            raise TypeError(f"{name} must hold real numbers, got a numpy array of {value.dtype}; encode texts first")
        dtype = np.float64 if value.dtype == np.float64 else np.float32
        tensor = torch.from_numpy(np.ascontiguousarray(value, dtype=dtype))  # also copies reversed / strided views
    elif isinstance(value, Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a tensor of {value.dtype}")
        tensor = value if value.dtype == torch.float64 else value.float()  # keeps autograd
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor of embeddings, got {type(value).__name__}")
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 1-D (d,) or 2-D (n, d), got shape {tuple(tensor.shape)}")
    finite = torch.isfinite(tensor.detach()).all(dim=1)
    if not bool(finite.all()):
        row = int((~finite).nonzero()[0, 0])
        raise ValueError(f"{name} holds NaN or infinity (row {row} is the first); embeddings must be finite")
    return tensor


def _matrix(x: Tensor, y: Tensor, metric: Metric) -> Tensor:
    if metric is Metric.COSINE:
        return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T  # (n, m)
    if metric is Metric.DOT:
        return x @ y.T
    p = 2.0 if metric is Metric.EUCLIDEAN else 1.0
    return -torch.cdist(x, y, p=p, compute_mode="donot_use_mm_for_euclid_dist")


def _pairwise(x: Tensor, y: Tensor, metric: Metric) -> Tensor:
    if metric is Metric.COSINE:
        return (F.normalize(x, dim=-1) * F.normalize(y, dim=-1)).sum(-1)  # (n,)
    if metric is Metric.DOT:
        return (x * y).sum(-1)
    p = 2.0 if metric is Metric.EUCLIDEAN else 1.0
    return -torch.linalg.vector_norm(x - y, ord=p, dim=-1)
