"""Documents to index: text, optional id and metadata, from files or Hugging Face datasets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from sentsim.data.columns import ShortRepr, text_column
from sentsim.data.jsonl import is_json_object, json_columns, parse_jsonl, read_json_records
from sentsim.data.lines import iter_lines, read_lines
from sentsim.data.tables import DELIMITED, read_table
from sentsim.validation import document_id


@dataclass(frozen=True, repr=False)
class Documents(ShortRepr):
    texts: list[str]
    ids: list[str] | None
    metadata: list[dict]

    def __len__(self) -> int:
        return len(self.texts)


def read_documents(
    source: object, *, text_field: str = "text", id_field: str = "id", split: str | None = "train"
) -> Documents:
    """Read documents from a ``.txt`` file (one a line), ``.jsonl``/``.json``/``.csv``/``.tsv``/``.parquet``
    (a ``text_field`` column, an optional ``id_field`` column, every other column becomes metadata,
    and so do the keys of a JSON record's nested ``metadata`` object),
    a ``datasets.Dataset`` or a Hub dataset name; ``-`` reads standard input, as JSON Lines when
    its first non-blank line is a JSON object, else one document a line.

    Ids are str or int, read as strings (anything else, such as a JSON object, is an error naming
    its place); either every document has one or none does (then the index makes them up), and
    two that read the same as strings (``7`` and ``"7"``) are an error naming both places.
    CSV and TSV cells are text, so each metadata column is typed as a whole: a column whose
    non-empty cells are all integers (without leading zeros) holds ints, all numbers floats,
    anything else strings; an empty cell is a missing value.
    """
    stdin = isinstance(source, (str, Path)) and str(source) == "-"
    lines = read_lines("-") if stdin else None
    first = next((line for line in lines if line.strip()), "") if stdin else ""
    if stdin and not is_json_object(first):
        if first.lstrip().startswith(("{", "[")):  # pretty-printed JSON or an array, not one object a line
            raise ValueError(
                "standard input starts like JSON but is not JSON Lines (one object a line); "
                "e.g. pipe through `jq -c '.[]'`"
            )
        return _text_lines(lines)
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".txt":
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"documents file not found: {path}")
        return _text_lines(iter_lines(path))
    suffix = Path(source).suffix.lower() if isinstance(source, (str, Path)) else ""
    delimited = suffix in DELIMITED
    if stdin:
        name = "standard input"
        numbered = list(parse_jsonl(lines, name))
        records, where = [record for _, record in numbered], [f"{name}:{number}" for number, _ in numbered]
        table = json_columns([_flattened(record) for record in records])
    elif suffix in (".json", ".jsonl") and Path(source).is_file():
        name = str(source)
        records, where = read_json_records(Path(source))
        table = json_columns([_flattened(record) for record in records])
    else:
        table, name = read_table(source, split=split)
        if delimited:
            table = {key: [value if value != "" else None for value in values] for key, values in table.items()}
        where = [f"{name}, row {row}" for row in range(len(next(iter(table.values()), [])))]
    if text_field not in table:
        raise ValueError(f"{name}: no {text_field!r} column; found {list(table)}")
    texts = text_column(table[text_field], text_field, name)
    ids = _ids(table[id_field], where) if id_field in table else None
    others = [key for key in table if key not in (text_field, id_field)]
    columns = {key: _typed(table[key]) if delimited else table[key] for key in others}
    metadata = [
        {key: columns[key][row] for key in others if columns[key][row] is not None} for row in range(len(texts))
    ]
    return Documents(texts, ids, metadata)


def _ids(values: list, where: list[str]) -> list[str] | None:
    """The ids as strings; None where no document has one; an error where some lack one, one is not a
    str or int, or two collide."""
    present = [row for row, value in enumerate(values) if value is not None]
    if not present:
        return None
    if len(present) < len(values):
        row = next(row for row, value in enumerate(values) if value is None)
        raise ValueError(f"{where[row]}: no id, though other documents have one; give every document an id or none")
    ids, first = [], {}
    for row, value in enumerate(values):
        text = document_id(value, f"{where[row]}: id")
        if text in first:
            raise ValueError(
                f"{where[row]}: id {value!r} is the same id as {values[first[text]]!r} at {where[first[text]]} "
                f"(ids are strings)"
            )
        first[text] = row
        ids.append(text)
    return ids


def _typed(values: list[str | None]) -> list[object]:
    """A text column as ints or floats where every non-empty cell is one that reads back as the
    same text ("1.10", "1E5" or "02134" stay text, and so does their whole column)."""
    cells = [value for value in values if value is not None]
    if cells and all(_reads_back(cell, int) for cell in cells):
        return [int(value) if value is not None else None for value in values]
    if cells and all(_reads_back(cell, int) or _reads_back(cell, float) for cell in cells):  # 10 and 12.5
        return [float(value) if value is not None else None for value in values]
    return values


def _reads_back(cell: str, kind: type) -> bool:
    try:
        number = kind(cell)
    except ValueError:
        return False
    return str(number) == cell and (
        kind is int and -(2**63) <= number < 2**63 or kind is float and math.isfinite(number)
    )


def _text_lines(lines) -> Documents:
    """One document a non-blank line, without ids or metadata."""
    texts = [line for line in lines if line.strip()]
    return Documents(texts, None, [{} for _ in texts])


def _flattened(record: dict) -> dict:
    """A JSON record with its nested ``metadata`` object (if any) flattened into it."""
    if not isinstance(record.get("metadata"), dict):
        return record
    return {**{key: value for key, value in record.items() if key != "metadata"}, **record["metadata"]}
