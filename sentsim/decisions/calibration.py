"""Calibration: turn similarity scores into probabilities (Platt scaling or isotonic regression)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sentsim.evaluation.binary import check_binary
from sentsim.validation import check_choice


class Calibrator(Protocol):
    name: str

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> Calibrator: ...

    def predict(self, scores: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict: ...


class PlattScaling:
    """``p = sigmoid(a * score + b)``, fitted by Newton's method on Platt's smoothed targets.

    The fit runs on standardized scores with a backtracking line search, so it converges for any
    metric's range (cosine near 0..1, dot products or negated distances far from 0)."""

    name = "platt"

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        self.a, self.b = a, b

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> PlattScaling:
        scores, labels = _both_classes(scores, labels)
        positives, negatives = labels.sum(), labels.size - labels.sum()
        targets = np.where(labels == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        center, spread = scores.mean(), scores.std() or 1.0
        features = np.stack([(scores - center) / spread, np.ones_like(scores)], axis=1)  # (n, 2)

        def loss(params: np.ndarray) -> float:  # cross-entropy against the smoothed targets
            logits = features @ params
            return float(np.sum(np.logaddexp(0.0, logits) - targets * logits))

        params = np.array([0.0, np.log((positives + 1) / (negatives + 1))])
        for _ in range(100):
            probs = _sigmoid(features @ params)
            gradient = features.T @ (probs - targets)
            hessian = features.T @ (features * (probs * (1 - probs))[:, None]) + 1e-12 * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            size, current = 1.0, loss(params)
            while size > 1e-10 and loss(params - size * step) > current - 1e-4 * size * (gradient @ step):
                size /= 2
            params -= size * step
            if np.abs(size * step).max() < 1e-10:
                break
        self.a = float(params[0] / spread)
        self.b = float(params[1] - params[0] * center / spread)
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(self.a * np.asarray(scores, dtype=np.float64) + self.b)

    def to_dict(self) -> dict:
        return {"name": self.name, "a": float(self.a), "b": float(self.b)}


class IsotonicCalibration:
    """A non-decreasing map score -> probability: pool-adjacent-violators, linear between block means."""

    name = "isotonic"

    def __init__(self, x: list[float] | None = None, y: list[float] | None = None) -> None:
        self.x = np.asarray(x if x is not None else [0.0], dtype=np.float64)
        self.y = np.asarray(y if y is not None else [0.5], dtype=np.float64)

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> IsotonicCalibration:
        scores, labels = _both_classes(scores, labels)
        distinct, group = np.unique(scores, return_inverse=True)  # tied scores pool first: order-free
        totals, counts = np.bincount(group, weights=labels), np.bincount(group)
        blocks: list[list[float]] = []  # [sum of labels, count, sum of scores]
        for score, total, count in zip(distinct, totals, counts, strict=True):
            blocks.append([float(total), float(count), float(score) * count])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
                total, count, score_sum = blocks.pop()
                blocks[-1][0] += total
                blocks[-1][1] += count
                blocks[-1][2] += score_sum
        self.x = np.array([score_sum / count for _, count, score_sum in blocks])
        self.y = np.array([total / count for total, count, _ in blocks])
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict:
        return {"name": self.name, "x": self.x.tolist(), "y": self.y.tolist()}


CALIBRATORS = {"platt": PlattScaling, "isotonic": IsotonicCalibration}


def make_calibrator(name: str) -> Calibrator:
    return CALIBRATORS[check_choice("calibration", name, CALIBRATORS)]()


def calibrator_from_dict(data: dict) -> Calibrator:
    params = {key: value for key, value in data.items() if key != "name"}
    return CALIBRATORS[check_choice("calibration", data.get("name"), CALIBRATORS)](**params)


def _both_classes(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = check_binary(scores, labels)
    if labels.min() == labels.max():
        raise ValueError("calibration needs both similar (1) and dissimilar (0) pairs")
    return scores, labels


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|
