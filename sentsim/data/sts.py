"""Scored sentence pairs (STS): ``sentence1``, ``sentence2``, ``score``.

Read from a headerless ``sentence1,sentence2,score`` CSV (the STS Benchmark files), a CSV/TSV
with a header, a JSON/JSONL/parquet file, a ``datasets.Dataset``, a folder written by
``Dataset.save_to_disk``, or a Hugging Face Hub dataset name (where the machine is online).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentsim.data.columns import float_column, require_columns, text_column

COLUMNS = ("sentence1", "sentence2", "score")


@dataclass(frozen=True)
class SentencePairs:
    """Pairs of sentences with a similarity score each."""

    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray  # (n,) float64

    def __len__(self) -> int:
        return len(self.scores)


def read_sts(source: object, *, split: str | None = None, columns: dict[str, str] | None = None) -> SentencePairs:
    """Read scored pairs from ``source`` (a path, a ``datasets.Dataset``, or a Hub name).

    Args:
        source: see the module docstring.
        split: the split of a Hub dataset or ``DatasetDict`` (default ``"test"``).
        columns: maps the names in the data to ``sentence1``/``sentence2``/``score``,
            e.g. ``{"text_a": "sentence1"}``.
    """
    rename = columns or {}
    if isinstance(source, (str, Path)) and Path(source).is_file() and Path(source).suffix.lower() in {".csv", ".tsv"}:
        table, name = _read_delimited(Path(source)), str(source)
    else:
        table = _read_dataset(source, split)
        name = str(source) if isinstance(source, (str, Path)) else type(source).__name__
    table = {rename.get(key, key): values for key, values in table.items()}
    require_columns(list(table), COLUMNS, name)
    pairs = SentencePairs(
        sentences1=text_column(table["sentence1"], "sentence1", name),
        sentences2=text_column(table["sentence2"], "sentence2", name),
        scores=float_column(table["score"], "score", name),
    )
    if len(pairs) == 0:
        raise ValueError(f"{name}: no sentence pairs")
    return pairs


def _read_delimited(path: Path) -> dict[str, list]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter, quoting=quoting))
    if not rows:
        raise ValueError(f"{path}: empty file")
    headerless = len(rows[0]) == 3 and _is_number(rows[0][-1])  # the STS Benchmark layout
    header, body = (list(COLUMNS), rows) if headerless else (rows[0], rows[1:])
    for row_number, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(
                f"{path}: row {row_number} has {len(row)} fields, expected {len(header)} ({', '.join(header)})"
            )
    return {column: [row[i] for row in body] for i, column in enumerate(header)}


def _read_dataset(source: object, split: str | None) -> dict[str, list]:
    import datasets

    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
            source = datasets.load_from_disk(str(path))
        elif path.is_file():
            kind = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(path.suffix.lower())
            if kind is None:
                raise ValueError(
                    f"{path}: unsupported file type {path.suffix!r}; expected .csv, .tsv, .json, .jsonl or .parquet"
                )
            source = datasets.load_dataset(kind, data_files=str(path), split="train")
        else:
            source = datasets.load_dataset(str(source), split=split or "test")
    if isinstance(source, datasets.DatasetDict):
        chosen = split or "test"
        if chosen not in source:
            raise ValueError(f"split {chosen!r} not found; available: {list(source)}")
        source = source[chosen]
    if not isinstance(source, datasets.Dataset):
        raise TypeError(f"expected a path, a Hub name or a datasets.Dataset, got {type(source).__name__}")
    return source.to_dict()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
