"""Scored sentence pairs (STS): ``sentence1``, ``sentence2``, ``score``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentsim.data.columns import ShortRepr, float_column, plain_list, require_columns, same_lengths, text_column
from sentsim.data.tables import read_table

COLUMNS = ["sentence1", "sentence2", "score"]


@dataclass(frozen=True, repr=False)
class SentencePairs(ShortRepr):
    """Pairs of sentences with a similarity score each."""

    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray  # (n,) float64

    def __post_init__(self) -> None:  # lists, Series (any index) or arrays: checked, stored as list / array
        object.__setattr__(self, "sentences1", text_column(self.sentences1, "sentences1", "SentencePairs"))
        object.__setattr__(self, "sentences2", text_column(self.sentences2, "sentences2", "SentencePairs"))
        object.__setattr__(self, "scores", float_column(plain_list(self.scores), "scores", "SentencePairs"))
        same_lengths("SentencePairs", sentences1=self.sentences1, sentences2=self.sentences2, scores=self.scores)

    def __len__(self) -> int:
        return len(self.scores)


def read_sts(source: object, *, split: str | None = None, columns: dict[str, str] | None = None) -> SentencePairs:
    """Read scored pairs from ``source`` (see :func:`sentsim.data.tables.read_table`).

    A CSV whose first row ends in a number is read as the headerless STS Benchmark layout
    ``sentence1,sentence2,score``. ``columns`` maps other names, e.g. ``{"text_a": "sentence1"}``.
    """
    header = COLUMNS if is_headerless_sts(source) else None
    table, name = read_table(source, split=split, columns=columns, header=header)
    require_columns(list(table), COLUMNS, name)
    pairs = SentencePairs(
        sentences1=text_column(table["sentence1"], "sentence1", name),
        sentences2=text_column(table["sentence2"], "sentence2", name),
        scores=float_column(table["score"], "score", name),
    )
    if len(pairs) == 0:
        raise ValueError(f"{name}: no sentence pairs")
    return pairs


def is_headerless_sts(source: object) -> bool:
    """True for a CSV file whose first row is ``text,text,number`` (the STS Benchmark layout)."""
    if not isinstance(source, (str, Path)) or Path(source).suffix.lower() != ".csv" or not Path(source).is_file():
        return False
    try:
        with open(source, encoding="utf-8-sig", newline="") as handle:
            first = next(csv.reader(handle), [])
    except UnicodeDecodeError:  # not text: read_table names the file and line
        return False
    if len(first) != 3:
        return False
    try:
        float(first[2])
    except ValueError:
        return False
    return True
