"""JSON Lines: one object a line, errors naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from sentsim.data.lines import iter_lines


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of ``path`` (``-``: standard input)."""
    yield from parse_jsonl(iter_lines(path), "standard input" if str(path) == "-" else str(path))


def parse_jsonl(lines: Iterable[str], name: str) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of ``lines``; errors name ``name`` and the line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{name}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{name}:{number}: expected a JSON object")
        yield number, record


def is_json_object(line: str) -> bool:
    """True when ``line`` is one JSON object (how JSON Lines on standard input are told from text lines)."""
    if not line.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False
