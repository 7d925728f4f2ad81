"""Logistic regression on embeddings: the classification head of a few-shot classifier.

Multinomial (softmax over classes) for single-label sets, one-vs-rest (a sigmoid per class)
for multi-label ones; examples may carry weights (a label text counts as ``label_weight`` examples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LogisticHead:
    """``softmax(x @ weight.T + bias)`` over classes (``sigmoid`` per class when ``multi_label``);
    ``weight`` is ``(classes, dim)``."""

    weight: np.ndarray
    bias: np.ndarray
    multi_label: bool = False

    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray,
        targets: np.ndarray,
        n_classes: int,
        *,
        c: float = 100.0,
        sample_weight: np.ndarray | None = None,
        multi_label: bool = False,
    ) -> LogisticHead:
        """Fit by L-BFGS on every example at once, minimizing ``c * sum(w_i * loss_i) + |weight|^2 / 2``.

        ``targets`` are class indices ``(n,)`` (loss: cross-entropy), or with ``multi_label`` a 0/1
        matrix ``(n, classes)`` (loss: binary cross-entropy summed over classes, i.e. one
        independent binary problem per class). The objective of scikit-learn's
        ``LogisticRegression(C=c)`` with ``sample_weight`` (the bias is not penalized); it is
        strictly convex, so the fit does not depend on a seed.
        """
        if c <= 0:
            raise ValueError(f"c must be > 0, got {c}")
        x = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float64))
        weights = torch.ones(len(x), dtype=torch.float64)
        if sample_weight is not None:
            weights = torch.from_numpy(np.asarray(sample_weight, dtype=np.float64))
        if multi_label:
            y = torch.from_numpy(np.asarray(targets, dtype=np.float64))
        else:
            y = torch.from_numpy(np.asarray(targets, dtype=np.int64))
        weight = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [weight, bias],
            lr=1,
            max_iter=1000,
            tolerance_grad=1e-7,
            tolerance_change=1e-10,
            history_size=20,
            line_search_fn="strong_wolfe",
        )
        total = float(weights.sum())
        penalty = 1 / (2 * c * total)  # the objective divided by c * sum(w): same minimum, better-scaled gradients

        def objective() -> torch.Tensor:
            optimizer.zero_grad()
            logits = x @ weight.T + bias  # (n, classes)
            if multi_label:
                losses = F.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(dim=1)
            else:
                losses = F.cross_entropy(logits, y, reduction="none")
            loss = (weights * losses).sum() / total + penalty * weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(objective)
        return cls(weight.detach().float().numpy(), bias.detach().float().numpy(), multi_label)

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n, classes)`` class probabilities; rows sum to 1 (independent sigmoids when ``multi_label``)."""
        logits = torch.from_numpy(np.asarray(embeddings, dtype=np.float32) @ self.weight.T + self.bias)
        return (torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)).numpy()
