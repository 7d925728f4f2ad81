"""Triplets: ``anchor``, ``positive`` (similar to the anchor), ``negative`` (not similar)."""

from __future__ import annotations

from dataclasses import dataclass

from sentsim.data.columns import ShortRepr, require_columns, same_lengths, text_column
from sentsim.data.tables import read_table

COLUMNS = ["anchor", "positive", "negative"]


@dataclass(frozen=True, repr=False)
class Triplets(ShortRepr):
    anchors: list[str]
    positives: list[str]
    negatives: list[str]

    def __post_init__(self) -> None:  # lists, Series (any index) or arrays: checked, stored as lists
        for name in ("anchors", "positives", "negatives"):
            object.__setattr__(self, name, text_column(getattr(self, name), name, "Triplets"))
        same_lengths("Triplets", anchors=self.anchors, positives=self.positives, negatives=self.negatives)

    def __len__(self) -> int:
        return len(self.anchors)


def read_triplets(source: object, *, split: str | None = None, columns: dict[str, str] | None = None) -> Triplets:
    """Read triplets from a file, dataset or Hub name (see :func:`sentsim.data.tables.read_table`)."""
    table, name = read_table(source, split=split, columns=columns)
    require_columns(list(table), COLUMNS, name)
    triplets = Triplets(*(text_column(table[column], column, name) for column in COLUMNS))
    if len(triplets) == 0:
        raise ValueError(f"{name}: no triplets")
    return triplets
