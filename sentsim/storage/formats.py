"""Versions of the files sentsim writes: each format records its version (``"format"``, from 1),
and its reader refuses any version it does not know."""

from __future__ import annotations

from pathlib import Path


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
