"""Multi-label support sets: each text carries a set of labels.

A multi-label row holds a list of labels (JSON, JSONL, Parquet, ``datasets``) or, in a CSV/TSV
cell, labels joined by ``|`` (``billing|refund``). A row with no label is an error: "none of
these" is what the classifier answers, not what an example teaches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentsim.validation import plain

__all__ = ["SEPARATOR", "label_sets", "membership"]

SEPARATOR = "|"
Label = str | int


def label_sets(
    values: Sequence[object], column: str, source: str, *, separator: str | None = None
) -> list[tuple[Label, ...]]:
    """Each row's labels as a tuple (duplicates dropped, first-seen order).

    A row is a list, tuple, set or array of labels, or one label (a set of one); with
    ``separator``, a str row is split on it (the CSV layout). Labels are non-empty str or int.
    """
    if isinstance(values, str):  # would read as one row per character
        raise TypeError(f"{source}: {column} must be a list with one label set per text, got the str {values!r}")
    rows = []
    for row, value in enumerate(plain(item) for item in values):
        if isinstance(value, str) and separator is not None:
            items = [part.strip() for part in value.split(separator) if part.strip()]
        elif isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
            items = [plain(item) for item in value]
        else:
            items = [value]
        if not items:
            raise ValueError(
                f"{source}: column {column!r}, row {row}: no label; every multi-label row needs one or more"
            )
        bad = [item for item in items if isinstance(item, bool) or not isinstance(item, (str, int)) or item == ""]
        if bad:
            raise ValueError(
                f"{source}: column {column!r}, row {row}: expected class labels (str or int), got {bad[0]!r} in {value!r}"
            )
        rows.append(tuple(dict.fromkeys(items)))
    return rows


def membership(rows: Sequence[tuple[Label, ...]], classes: Sequence[Label]) -> np.ndarray:
    """``(len(rows), len(classes))`` bool: row i carries class c (labels that are no class are ignored)."""
    index = {label: c for c, label in enumerate(classes)}
    matrix = np.zeros((len(rows), len(classes)), dtype=bool)
    for i, labels in enumerate(rows):
        for label in labels:
            if label in index:
                matrix[i, index[label]] = True
    return matrix
