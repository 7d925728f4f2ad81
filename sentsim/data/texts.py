"""Texts from a file: one text a line, JSON Lines with a text field, or standard input."""

from __future__ import annotations

from pathlib import Path

from sentsim.data.jsonl import read_jsonl
from sentsim.data.lines import read_lines


def read_texts(source: str | Path, *, field: str | None = None) -> list[str]:
    """Read texts from ``source``: ``-`` for stdin, ``*.jsonl`` (the ``field`` of each object,
    default ``"text"``), else one a line.

    Lines keep their positions (an empty line is an empty text), so row i of the output is line i.
    """
    is_jsonl = str(source) != "-" and Path(source).suffix.lower() == ".jsonl"
    if field is not None and not is_jsonl:
        raise ValueError(
            f"{source}: a text field ({field!r}) is read from .jsonl files only; this input has a text a line"
        )
    if not is_jsonl:
        return read_lines(source)
    field = field or "text"
    texts = []
    for number, record in read_jsonl(source):
        if not isinstance(record.get(field), str):
            raise ValueError(f"{source}:{number}: expected an object with a text field {field!r}")
        texts.append(record[field])
    return texts
