"""Column checks that name the column and the row of the first bad value."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sentsim.validation import plain


def require_columns(available: Sequence[str], required: Sequence[str], source: str) -> None:
    missing = [name for name in required if name not in available]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; found {list(available)}")


def plain_list(values: object) -> list:
    """``values`` (list, array, Series) as a list of Python values, in order (a Series' index is ignored)."""
    return list(plain(values))


def same_lengths(source: str, **columns: Sequence[object]) -> None:
    """A ValueError naming the columns unless they all have one length."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{source}: columns of different lengths {lengths}")


def text_column(values: Sequence[object], column: str, source: str) -> list[str]:
    """``values`` as str, or a ValueError naming ``column`` and the row of the first non-text or
    blank value (an empty cell is missing data, not a text)."""
    texts = list(values)
    for row, value in enumerate(texts):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{source}: column {column!r}, row {row}: expected a non-empty text, got {value!r}")
    return texts


def float_column(values: Sequence[object], column: str, source: str) -> np.ndarray:
    """``values`` as float64, or a ValueError naming ``column`` and the row of the first bad number."""
    numbers = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"{source}: column {column!r}, row {row}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise ValueError(f"{source}: column {column!r}, row {row}: expected a finite number, got {value!r}")
        numbers[row] = number
    return numbers


def binary_column(values: Sequence[object], column: str, source: str) -> np.ndarray:
    """``values`` as 0/1 int64 (accepts bools, 0/1 numbers and "0"/"1"/"true"/"false" text)."""
    labels = np.empty(len(values), dtype=np.int64)
    words = {"0": 0, "1": 1, "false": 0, "true": 1, "0.0": 0, "1.0": 1}
    for row, value in enumerate(values):
        if isinstance(value, str) and value.strip().lower() in words:
            labels[row] = words[value.strip().lower()]
        elif isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating)) and value in (0, 1):
            labels[row] = int(value)
        else:
            raise ValueError(f"{source}: column {column!r}, row {row}: expected a label 0 or 1, got {value!r}")
    return labels


def class_column(values: Sequence[object], column: str, source: str) -> list[str | int]:
    """Class labels (str or int), or a ValueError naming the row of the first missing or ill-typed one."""
    labels = list(values)
    for row, value in enumerate(labels):
        if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)) or value == "":
            raise ValueError(
                f"{source}: column {column!r}, row {row}: expected a class label (str or int), got {value!r}"
            )
    return [int(value) if isinstance(value, np.integer) else value for value in labels]


LABEL_SEPARATOR = "|"  # between the labels of a multi-label CSV/TSV cell


def label_set_column(
    values: Sequence[object], column: str, source: str, *, separator: str | None = None, allow_empty: bool = False
) -> list[tuple[str | int, ...]]:
    """Each row's labels as a tuple (duplicates dropped, first-seen order).

    A row is a list, tuple, set or array of labels, or one label (a set of one); with
    ``separator``, a str row is split on it (the CSV layout). Labels are non-empty str or int.
    A row with no label is an error unless ``allow_empty`` (texts of no class, in tuning data).
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
        if not items and not allow_empty:
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


class ShortRepr:
    """A data set's repr: its class and size, not every row (``load_stsb`` holds thousands)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} row{'' if len(self) == 1 else 's'})"
