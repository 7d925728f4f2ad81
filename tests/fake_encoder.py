"""An encoder whose embeddings are set by hand, to test decisions exactly."""

from __future__ import annotations

import numpy as np


class FakeEncoder:
    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = {text: np.asarray(vector, dtype=np.float32) for text, vector in vectors.items()}
        self.dim = len(next(iter(self.vectors.values())))
        self.calls = 0

    def encode(self, texts, *, normalize=None, batch_size=32, show_progress=None, **_):
        self.calls += 1
        single = isinstance(texts, str)
        rows = (
            np.stack([self.vectors[t] for t in ([texts] if single else texts)])
            if texts
            else np.zeros((0, self.dim), np.float32)
        )
        if normalize:
            rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows[0] if single else rows
