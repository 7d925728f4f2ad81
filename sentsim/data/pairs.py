"""Labelled sentence pairs: ``sentence1``, ``sentence2``, ``label`` (1 = similar, 0 = dissimilar)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentsim.data.columns import ShortRepr, binary_column, plain_list, require_columns, same_lengths, text_column
from sentsim.data.tables import read_table

COLUMNS = ["sentence1", "sentence2", "label"]


@dataclass(frozen=True, repr=False)
class LabelledPairs(ShortRepr):
    """Pairs of sentences with a binary label each (1 = similar / duplicate, 0 = not)."""

    sentences1: list[str]
    sentences2: list[str]
    labels: np.ndarray  # (n,) int64 in {0, 1}

    def __post_init__(self) -> None:  # lists, Series (any index) or arrays: checked, stored as list / array
        object.__setattr__(self, "sentences1", text_column(self.sentences1, "sentences1", "LabelledPairs"))
        object.__setattr__(self, "sentences2", text_column(self.sentences2, "sentences2", "LabelledPairs"))
        object.__setattr__(self, "labels", binary_column(plain_list(self.labels), "labels", "LabelledPairs"))
        same_lengths("LabelledPairs", sentences1=self.sentences1, sentences2=self.sentences2, labels=self.labels)

    def __len__(self) -> int:
        return len(self.labels)


def read_pairs(source: object, *, split: str | None = None, columns: dict[str, str] | None = None) -> LabelledPairs:
    """Read labelled pairs from a file, dataset or Hub name (see :func:`sentsim.data.tables.read_table`)."""
    table, name = read_table(source, split=split, columns=columns)
    require_columns(list(table), COLUMNS, name)
    pairs = LabelledPairs(
        sentences1=text_column(table["sentence1"], "sentence1", name),
        sentences2=text_column(table["sentence2"], "sentence2", name),
        labels=binary_column(table["label"], "label", name),
    )
    if len(pairs) == 0:
        raise ValueError(f"{name}: no sentence pairs")
    return pairs
