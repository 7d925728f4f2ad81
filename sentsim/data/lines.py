"""UTF-8 text files: whole or line by line (split on newlines only), with decoding errors that name the line."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path


def iter_lines(source: str | Path) -> Iterator[str]:
    """The lines of ``source`` (``-``: standard input), one at a time, without ``\\n`` / ``\\r\\n``.

    Only newlines end a line (``str.splitlines`` would also split on form feeds, U+2028 and
    others that can sit inside a text), so line i of the file is item i. A UTF-8 byte order
    mark is dropped; bytes that are not UTF-8 raise a ValueError naming the line.
    """
    if str(source) == "-":
        stream = getattr(sys.stdin, "buffer", None)  # a text-only stdin (a test's StringIO) has none
        if stream is None:
            stream = io.BytesIO(sys.stdin.read().encode("utf-8", "surrogatepass"))
        yield from _decoded(stream, "standard input")
        return
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    with open(path, "rb") as handle:
        yield from _decoded(handle, str(path))


def read_lines(source: str | Path) -> list[str]:
    """All lines of ``source``, as :func:`iter_lines` gives them."""
    return list(iter_lines(source))


def read_text(path: Path) -> str:
    """The whole of ``path`` as text (a UTF-8 byte order mark dropped); bytes that are not UTF-8 raise a
    ValueError naming the line, as :func:`iter_lines` does."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        start = data.rfind(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}:{line}: not valid UTF-8 ({error.reason} at byte {error.start - start})") from None


def _decoded(stream, name: str) -> Iterator[str]:
    for number, raw in enumerate(stream, start=1):  # binary streams split on b"\n" only
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{name}:{number}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
        yield line.removesuffix("\n").removesuffix("\r")
