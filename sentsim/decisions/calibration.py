"""Calibration: turn similarity scores into probabilities (Platt scaling or isotonic regression)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sentsim.evaluation.binary import check_binary


class Calibrator(Protocol):
    name: str

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> Calibrator: ...

    def predict(self, scores: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict: ...


class PlattScaling:
    """``p = sigmoid(a * score + b)``, fitted by Newton's method on Platt's smoothed targets."""

    name = "platt"

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        self.a, self.b = a, b

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> PlattScaling:
        scores, labels = check_binary(scores, labels)
        positives, negatives = labels.sum(), labels.size - labels.sum()
        if positives == 0 or negatives == 0:
            raise ValueError("calibration needs both similar (1) and dissimilar (0) pairs")
        targets = np.where(labels == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        features = np.stack([scores, np.ones_like(scores)], axis=1)  # (n, 2)
        params = np.array([1.0, 0.0])
        for _ in range(100):
            probs = _sigmoid(features @ params)
            gradient = features.T @ (probs - targets)
            hessian = features.T @ (features * (probs * (1 - probs))[:, None]) + 1e-9 * np.eye(2)
            step = np.linalg.solve(hessian, gradient)
            params -= step
            if np.abs(step).max() < 1e-10:
                break
        self.a, self.b = float(params[0]), float(params[1])
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(self.a * np.asarray(scores, dtype=np.float64) + self.b)

    def to_dict(self) -> dict:
        return {"name": self.name, "a": self.a, "b": self.b}


class IsotonicCalibration:
    """A non-decreasing map score -> probability: pool-adjacent-violators, linear between block means."""

    name = "isotonic"

    def __init__(self, x: list[float] | None = None, y: list[float] | None = None) -> None:
        self.x = np.asarray(x if x is not None else [0.0], dtype=np.float64)
        self.y = np.asarray(y if y is not None else [0.5], dtype=np.float64)

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> IsotonicCalibration:
        scores, labels = check_binary(scores, labels)
        order = np.argsort(scores, kind="mergesort")
        blocks: list[list[float]] = []  # [sum of labels, count, sum of scores]
        for score, label in zip(scores[order], labels[order], strict=True):
            blocks.append([float(label), 1.0, float(score)])
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
    if name not in CALIBRATORS:
        raise ValueError(f"unknown calibration {name!r}; expected one of {', '.join(CALIBRATORS)}")
    return CALIBRATORS[name]()


def calibrator_from_dict(data: dict) -> Calibrator:
    params = {key: value for key, value in data.items() if key != "name"}
    if data.get("name") not in CALIBRATORS:
        raise ValueError(f"unknown calibration {data.get('name')!r}; expected one of {', '.join(CALIBRATORS)}")
    return CALIBRATORS[data["name"]](**params)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|
