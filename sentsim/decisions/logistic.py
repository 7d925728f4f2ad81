"""Multinomial logistic regression on embeddings: the classification head of a few-shot classifier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LogisticHead:
    """``softmax(x @ weight.T + bias)`` over classes; ``weight`` is ``(classes, dim)``."""

    weight: np.ndarray
    bias: np.ndarray

    @classmethod
    def fit(cls, embeddings: np.ndarray, targets: np.ndarray, n_classes: int, *, c: float = 100.0) -> LogisticHead:
        """Fit by L-BFGS on every example at once, minimizing ``c * sum(cross-entropy) + |weight|^2 / 2``.

        The objective of scikit-learn's ``LogisticRegression(C=c)`` (the bias is not penalized);
        it is strictly convex, so the fit does not depend on a seed.
        """
        if c <= 0:
            raise ValueError(f"c must be > 0, got {c}")
        x = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float64))
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
        penalty = 1 / (2 * c * len(x))  # the objective divided by c * n: same minimum, better-scaled gradients

        def objective() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(x @ weight.T + bias, y) + penalty * weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(objective)
        return cls(weight.detach().float().numpy(), bias.detach().float().numpy())

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n, classes)`` class probabilities; rows sum to 1."""
        logits = torch.from_numpy(np.asarray(embeddings, dtype=np.float32) @ self.weight.T + self.bias)
        return torch.softmax(logits, dim=1).numpy()
