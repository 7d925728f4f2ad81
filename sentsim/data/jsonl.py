"""JSON records: JSON Lines (one object a line) or a ``.json`` document, errors naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from sentsim.data.lines import iter_lines, read_text


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
            raise ValueError(f"{name}:{number}: expected a JSON object, got {json_type(record)}")
        yield number, record


def json_type(value: object) -> str:
    """A parsed value's JSON type with its article ("an array" for a list), for messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def is_json_object(line: str) -> bool:
    """True when ``line`` is one JSON object (how JSON Lines on standard input are told from text lines)."""
    if not line.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def read_json(path: Path) -> object:
    """The JSON document in ``path``; an empty file, bytes that are not UTF-8 or invalid JSON are a
    ValueError naming the file and the line."""
    text = read_text(path)
    if not text.strip():
        raise ValueError(f"{path}: empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


def read_json_records(path: Path) -> tuple[list[dict], list[str]]:
    """The objects of a ``.jsonl`` or ``.json`` file and where each one is (``file:line``, ``file, row i``).

    A ``.json`` file holds an array of objects, an object of columns (``{"text": [...], ...}``) or
    JSON Lines. An empty file, bytes that are not UTF-8, invalid JSON and an item that is not an
    object are ValueErrors naming the file and the line (or row).
    """
    if path.suffix.lower() == ".jsonl":
        numbered = list(read_jsonl(path))
    else:
        text = read_text(path)
        try:
            return _document_records(json.loads(text), path)
        except json.JSONDecodeError as error:
            first = next((line for line in text.split("\n") if line.strip()), "")
            if first and not is_json_object(first):  # not JSON Lines: the error of the whole document
                raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
        numbered = list(parse_jsonl(text.split("\n"), str(path)))
    if not numbered:
        raise ValueError(f"{path}: empty file")
    return [record for _, record in numbered], [f"{path}:{number}" for number, _ in numbered]


def json_columns(records: list[dict]) -> dict[str, list]:
    """Records as columns, in the order keys first appear; a record without a key has None there."""
    keys = list(dict.fromkeys(key for record in records for key in record))
    return {key: [record.get(key) for record in records] for key in keys}


def _document_records(document: object, path: Path) -> tuple[list[dict], list[str]]:
    """The records of a parsed ``.json`` document: an array of objects, an object of columns, or one object."""
    if isinstance(document, dict) and document and all(isinstance(value, list) for value in document.values()):
        lengths = {key: len(values) for key, values in document.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{path}: columns of different lengths {lengths}")
        rows = range(next(iter(lengths.values())))
        document = [{key: values[row] for key, values in document.items()} for row in rows]
    elif isinstance(document, dict):  # a one-line JSON Lines file ({} holds no record)
        document = [document] if document else []
    if not isinstance(document, list):
        raise ValueError(
            f"{path}: expected an array of objects, an object of columns or JSON Lines, got {json_type(document)}"
        )
    if not document:
        raise ValueError(f"{path}: no records")
    for row, record in enumerate(document):
        if not isinstance(record, dict):
            raise ValueError(f"{path}, row {row}: expected a JSON object, got {json_type(record)}")
    return document, [f"{path}, row {row}" for row in range(len(document))]
