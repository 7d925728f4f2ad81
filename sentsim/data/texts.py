"""Texts from a file: one text a line, JSON Lines or a table with a text field, or standard input."""

from __future__ import annotations

from pathlib import Path

from sentsim.data.columns import require_columns, text_column
from sentsim.data.jsonl import read_jsonl
from sentsim.data.lines import read_lines
from sentsim.data.tables import read_table

TABLES = (".csv", ".tsv", ".json", ".parquet")


def read_texts(source: str | Path, *, field: str | None = None) -> list[str]:
    """Read texts from ``source``: ``-`` for stdin, ``*.jsonl`` (the ``field`` of each object,
    default ``"text"``), a ``.csv`` / ``.tsv`` / ``.json`` / ``.parquet`` table (its ``field``
    column, default ``"text"``), else one a line.

    Lines keep their positions (an empty line is an empty text), so row i of the output is line i.
    """
    suffix = Path(source).suffix.lower() if str(source) != "-" else ""
    if suffix in TABLES:  # not lines: a header and the other columns would become texts
        table, name = read_table(source)
        require_columns(list(table), [field or "text"], name)
        return text_column(table[field or "text"], field or "text", name)
    if field is not None and suffix != ".jsonl":
        raise ValueError(
            f"{source}: a text field ({field!r}) is read from .jsonl and table files only; this input has a text a line"
        )
    if suffix != ".jsonl":
        return read_lines(source)
    field = field or "text"
    texts = []
    for number, record in read_jsonl(source):
        if not isinstance(record.get(field), str):
            raise ValueError(f"{source}:{number}: expected an object with a text field {field!r}")
        texts.append(record[field])
    return texts
