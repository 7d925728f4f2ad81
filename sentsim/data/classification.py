"""Labelled texts for classification: ``text``, ``label``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentsim.data.columns import (
    LABEL_SEPARATOR,
    ShortRepr,
    class_column,
    label_set_column,
    require_columns,
    same_lengths,
    text_column,
)
from sentsim.data.tables import read_table

COLUMNS = ["text", "label"]


@dataclass(frozen=True, repr=False)
class LabelledTexts(ShortRepr):
    texts: list[str]
    labels: list[str | int]

    def __post_init__(self) -> None:  # lists, Series (any index) or arrays: checked, stored as lists
        object.__setattr__(self, "texts", text_column(self.texts, "texts", "LabelledTexts"))
        object.__setattr__(self, "labels", class_column(self.labels, "labels", "LabelledTexts"))
        same_lengths("LabelledTexts", texts=self.texts, labels=self.labels)

    def __len__(self) -> int:
        return len(self.texts)

    def sample_per_class(self, shots: int, seed: int = 0) -> LabelledTexts:
        """``shots`` examples of each class, drawn without replacement.

        Classes are visited in ``sorted(set(labels))`` order and each draws with one
        ``numpy.random.default_rng(seed)``, so a seed always gives the same sample.
        """
        if shots < 1:
            raise ValueError(f"shots must be >= 1, got {shots}")
        rng = np.random.default_rng(seed)
        labels = np.asarray(self.labels, dtype=object)
        chosen: list[int] = []
        for label in sorted(set(self.labels)):
            members = np.flatnonzero(labels == label)
            if len(members) < shots:
                raise ValueError(f"class {label!r} has {len(members)} examples, fewer than shots={shots}")
            chosen.extend(rng.choice(members, size=shots, replace=False).tolist())
        return LabelledTexts([self.texts[i] for i in chosen], [self.labels[i] for i in chosen])


def read_labelled_texts(
    source: object, *, split: str | None = None, columns: dict[str, str] | None = None
) -> LabelledTexts:
    """Read ``text``/``label`` rows from a file, dataset or Hub name (see :func:`sentsim.data.tables.read_table`)."""
    table, name = read_table(source, split=split, columns=columns)
    require_columns(list(table), COLUMNS, name)
    data = LabelledTexts(text_column(table["text"], "text", name), class_column(table["label"], "label", name))
    if len(data) == 0:
        raise ValueError(f"{name}: no labelled texts")
    return data


@dataclass(frozen=True, repr=False)
class MultiLabelTexts(ShortRepr):
    """Texts with a set of labels each (a tuple, first-seen order; empty for a text of no class)."""

    texts: list[str]
    labels: list[tuple[str | int, ...]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", text_column(self.texts, "texts", "MultiLabelTexts"))
        object.__setattr__(self, "labels", label_set_column(self.labels, "labels", "MultiLabelTexts", allow_empty=True))
        same_lengths("MultiLabelTexts", texts=self.texts, labels=self.labels)

    def __len__(self) -> int:
        return len(self.texts)


def read_multi_label_texts(
    source: object, *, split: str | None = None, columns: dict[str, str] | None = None
) -> MultiLabelTexts:
    """Read ``text`` / ``labels`` rows (or ``text`` / ``label``) from a file, dataset or Hub name.

    A row's labels are a list (JSON, JSONL, Parquet, ``datasets``) or, in a CSV/TSV cell, labels
    joined by ``|`` (``billing|refund``). A row may have no label (an empty list or cell: a text of no
    class, for evaluation and threshold tuning); a support set refuses it.
    """
    table, name = read_table(source, split=split, columns=columns)
    column = "labels" if "labels" in table else "label"
    require_columns(list(table), ["text", column], name)
    texts = text_column(table["text"], "text", name)
    data = MultiLabelTexts(
        texts, label_set_column(table[column], column, name, separator=LABEL_SEPARATOR, allow_empty=True)
    )
    if len(data) == 0:
        raise ValueError(f"{name}: no labelled texts")
    return data
