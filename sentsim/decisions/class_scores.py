"""Class scores from a support set: cosine to class prototypes, or to each class's nearest examples.

Pure functions over normalized embeddings. A class's members are its examples (rows of a
membership matrix, so an example of a multi-label set belongs to several classes) and, where it
has one, its label text, which counts as ``label_weight`` examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sentsim.decisions.logistic import LogisticHead

__all__ = ["Layout", "fit_head", "knn_scores", "membership", "prototype_scores", "prototypes"]


@dataclass(frozen=True)
class Layout:
    """The classes of a support set and their members: what scoring needs."""

    classes: list
    members: np.ndarray  # (support, classes) bool: example i belongs to class c
    label_vectors: np.ndarray  # (classes, dim) unit label-text embeddings; zero rows where a class has none
    has_text: np.ndarray  # (classes,) bool

    @classmethod
    def build(cls, classes: list, rows: Sequence[tuple], vectors: dict, label_weight: float, dim: int) -> Layout:
        """From each example's labels (``rows``) and the label-text embedding of each class that has one;
        a ValueError names a class with neither examples nor a label text that counts (``label_weight > 0``)."""
        members = membership(rows, classes)
        has_text = np.array([label in vectors for label in classes], dtype=bool)
        empty = [c for c in range(len(classes)) if not members[:, c].any() and not (has_text[c] and label_weight)]
        if empty:
            raise ValueError(
                f"class {classes[empty[0]]!r} has no examples and no label text to be scored by "
                "(give label_text=, with label_weight > 0, or add examples)"
            )
        label_vectors = np.zeros((len(classes), dim), dtype=np.float32)
        for c, label in enumerate(classes):
            if has_text[c]:
                label_vectors[c] = vectors[label]
        return cls(list(classes), members, label_vectors, has_text)


def fit_head(
    embeddings: np.ndarray, layout: Layout, label_weight: float, *, c: float, multi_label: bool
) -> LogisticHead:
    """A logistic head on the examples and, as points weighted ``label_weight``, the label texts."""
    if len(layout.classes) < 2:
        raise ValueError("the logistic strategy needs at least 2 classes")
    texts = np.flatnonzero(layout.has_text) if label_weight else np.zeros(0, dtype=np.int64)
    points = np.concatenate([embeddings, layout.label_vectors[texts]])
    weights = np.r_[np.ones(len(embeddings)), np.full(len(texts), label_weight)]
    if multi_label:
        targets = np.concatenate([layout.members, np.eye(len(layout.classes), dtype=bool)[texts]])
    else:
        targets = np.r_[layout.members.argmax(axis=1), texts]
    return LogisticHead.fit(points, targets, len(layout.classes), c=c, sample_weight=weights, multi_label=multi_label)


def prototypes(
    embeddings: np.ndarray, members: np.ndarray, label_vectors: np.ndarray, has_text: np.ndarray, label_weight: float
) -> np.ndarray:
    """``(classes, dim)`` unit prototypes: the weighted mean of each class's examples and label text.

    Args:
        embeddings: ``(support, dim)`` unit rows.
        members: ``(support, classes)`` 0/1, example i belongs to class c.
        label_vectors: ``(classes, dim)`` unit label-text embeddings (rows without a text are ignored).
        has_text: ``(classes,)`` bool.
        label_weight: how many examples a label text is worth.
    """
    sums = members.T.astype(np.float32) @ embeddings  # (classes, dim); the mean's scale goes in the normalization
    sums += (label_weight * has_text.astype(np.float32))[:, None] * label_vectors
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def prototype_scores(queries: np.ndarray, class_prototypes: np.ndarray) -> np.ndarray:
    """``(n, classes)`` cosines of unit ``queries`` to unit prototypes."""
    return queries @ class_prototypes.T


def knn_scores(
    queries: np.ndarray,
    embeddings: np.ndarray,
    members: np.ndarray,
    label_vectors: np.ndarray,
    has_text: np.ndarray,
    label_weight: float,
    k: int,
) -> np.ndarray:
    """``(n, classes)``: per class, the weighted mean cosine of the ``k`` nearest examples and the label text
    (worth ``label_weight`` examples): ``(sum of the top-k cosines + w * cos(label)) / (k' + w)``."""
    similarities = torch.from_numpy(queries @ embeddings.T)  # (n, support)
    label_cosines = queries @ label_vectors.T  # (n, classes)
    columns = []
    for c in range(members.shape[1]):
        rows = torch.from_numpy(np.flatnonzero(members[:, c]))
        top = min(k, len(rows))
        total = similarities[:, rows].topk(top, dim=1).values.sum(dim=1).numpy() if top else 0.0
        weight = label_weight if has_text[c] else 0.0
        columns.append((total + weight * label_cosines[:, c]) / (top + weight))
    return np.stack(columns, axis=1).astype(np.float32)


def membership(rows: Sequence[tuple], classes: Sequence) -> np.ndarray:
    """``(len(rows), len(classes))`` bool: row i carries class c (labels that are no class are ignored)."""
    index = {label: c for c, label in enumerate(classes)}
    matrix = np.zeros((len(rows), len(classes)), dtype=bool)
    for i, labels in enumerate(rows):
        for label in labels:
            if label in index:
                matrix[i, index[label]] = True
    return matrix
