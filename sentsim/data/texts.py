"""Texts from a file: one text a line, JSON Lines with a text field, or standard input."""

from __future__ import annotations

import sys
from pathlib import Path

from sentsim.data.jsonl import read_jsonl


def read_texts(source: str | Path, *, field: str = "text") -> list[str]:
    """Read texts from ``source``: ``-`` for stdin, ``*.jsonl`` (the ``field`` of each object), else one a line.

    Lines keep their positions (an empty line is an empty text), so row i of the output is line i.
    """
    if str(source) == "-":
        return sys.stdin.read().splitlines()
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if path.suffix.lower() != ".jsonl":
        return lines
    texts = []
    for number, record in read_jsonl(path):
        if not isinstance(record.get(field), str):
            raise ValueError(f"{path}:{number}: expected an object with a text field {field!r}")
        texts.append(record[field])
    return texts
