"""Read a table of columns from a local file, a ``datasets`` object or a Hugging Face Hub name."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sentsim.data.jsonl import json_columns, read_json_records
from sentsim.data.lines import read_text

DELIMITED = {".csv": ",", ".tsv": "\t"}
LOCAL_FORMATS = (*DELIMITED, ".json", ".jsonl", ".parquet")


def read_table(
    source: object,
    *,
    split: str | None = None,
    columns: dict[str, str] | None = None,
    header: list[str] | None = None,
) -> tuple[dict[str, list], str]:
    """``({column: values}, name)`` of ``source``, with columns renamed by ``columns``.

    ``source`` is a CSV/TSV (header row unless ``header`` names the columns), JSON (an array of
    objects, an object of columns, or JSON Lines), JSONL or Parquet file, a folder written by
    ``save_to_disk``, a ``datasets.Dataset``/``DatasetDict`` (``split`` picks one, default
    ``"test"``), or a Hub dataset name (where online). Local files are read here, not by
    ``datasets``: an empty, undecodable or malformed file is a one-line ValueError naming the file
    (and the line).
    """
    if isinstance(source, (str, Path)) and Path(source).is_file():
        table, name = read_file(Path(source), header), str(source)
    else:
        table = _read_dataset(source, split)
        name = str(source) if isinstance(source, (str, Path)) else type(source).__name__
    check_renamed(columns, list(table), name)
    rename = columns or {}
    return {rename.get(key, key): values for key, values in table.items()}, name


def check_renamed(columns: dict[str, str] | None, found: list[str], name: str) -> None:
    """Raise a ValueError if the ``columns`` mapping renames a column that ``name`` does not have."""
    missing = [column for column in columns or {} if column not in found]
    if missing:
        raise ValueError(f"{name}: columns renames {', '.join(map(repr, missing))}, not a column here (found {found})")


def read_file(path: Path, header: list[str] | None = None) -> dict[str, list]:
    """The columns of a local CSV, TSV, JSON, JSONL or Parquet file (``header``: of a headerless CSV/TSV)."""
    suffix = path.suffix.lower()
    if suffix in DELIMITED:
        return _read_delimited(path, header)
    if suffix in (".json", ".jsonl"):
        return json_columns(read_json_records(path)[0])
    if suffix == ".parquet":
        return _read_parquet(path)
    raise ValueError(f"{path}: unsupported file type {path.suffix!r}; expected {', '.join(LOCAL_FORMATS)}")


def _read_delimited(path: Path, header: list[str] | None) -> dict[str, list]:
    delimiter = DELIMITED[path.suffix.lower()]
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    text = io.StringIO(read_text(path), newline="")
    rows = [row for row in csv.reader(text, delimiter=delimiter, quoting=quoting) if row]
    if not rows:
        raise ValueError(f"{path}: empty file")
    names, body = (header, rows) if header is not None else (rows[0], rows[1:])
    for row_number, row in enumerate(body):
        if len(row) != len(names):
            raise ValueError(
                f"{path}: row {row_number} has {len(row)} fields, expected {len(names)} ({', '.join(names)})"
            )
    return {column: [row[i] for row in body] for i, column in enumerate(names)}


def _read_parquet(path: Path) -> dict[str, list]:
    import pyarrow
    import pyarrow.parquet

    try:
        return pyarrow.parquet.read_table(path).to_pydict()
    except pyarrow.ArrowException as error:
        raise ValueError(f"{path}: not a readable Parquet file ({str(error).splitlines()[0]})") from None


def _read_dataset(source: object, split: str | None) -> dict[str, list]:
    import datasets

    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
            source = datasets.load_from_disk(str(path))
        elif path.exists() or str(source).startswith((".", "/", "~")):
            raise FileNotFoundError(f"{path} is neither a data file nor a saved dataset folder")
        elif path.suffix.lower() in LOCAL_FORMATS:  # a mistyped file name, not a Hub dataset
            raise FileNotFoundError(f"{path}: no such file")
        elif ":" in str(source):  # Hub ids have no ":"; a mistyped named set such as "stbs:test"
            raise FileNotFoundError(f"{source} is not a file, a saved dataset folder or a Hub dataset id")
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
