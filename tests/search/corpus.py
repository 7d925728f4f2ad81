"""The toy corpus the search tests index."""

import numpy as np

from ..toy_task import TOPICS

TEXTS = [text for texts in TOPICS.values() for text in texts]


IDS = [f"d{i}" for i in range(len(TEXTS))]


META = [{"topic": topic, "n": i, "even": i % 2 == 0} for i, topic in enumerate(t for t in TOPICS for _ in range(4))]


def clustered(n, dim=48, clusters=200, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    points = centers[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    return points.astype(np.float32)
