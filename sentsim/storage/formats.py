"""Versions of the files sentsim writes: each format records its version (``"format"``, from 1),
and its reader refuses any version it does not know."""

from __future__ import annotations

import json
from pathlib import Path


def read_json_object(path: Path, kind: str, error: type[Exception] = ValueError) -> dict:
    """The JSON object in ``path``, a ``kind`` record: FileNotFoundError naming the folder when the file
    is missing; ``error`` naming the file when it is not UTF-8 JSON or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no {kind} in {path.parent}: {path.name} is missing") from None
    except (ValueError, RecursionError) as problem:  # not JSON, not UTF-8, a 5,000-digit number, nested too deeply
        raise error(f"{path} is corrupted: {problem}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object ({kind}), got {type(data).__name__}")
    return data


def read_versioned(path: Path, supported: int, kind: str, error: type[Exception] = ValueError) -> dict:
    """:func:`read_json_object`, refused unless it is of format ``supported`` (:func:`check_format`)."""
    data = read_json_object(path, kind, error)
    check_format(path, data, supported, kind, error)
    return data


def check_format(path: Path, data: dict, supported: int, kind: str, error: type[Exception] = ValueError) -> None:
    """An ``error`` naming ``path``, the version found and the one this sentsim reads, unless
    ``data["format"]`` is ``supported``. Check it before the other fields: another format may change them."""
    found = data.get("format")
    if found is None:
        raise error(f"{path} records no {kind} format; this sentsim reads format {supported}")
    if type(found) is int and found > supported:  # not a bool
        raise error(f"{path}: {kind} format {found} is newer than this sentsim reads ({supported}); upgrade sentsim")
    if type(found) is not int or found != supported:
        raise error(f"{path}: {kind} format {found!r} is unknown; this sentsim reads format {supported}")
