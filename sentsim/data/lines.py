"""Lines of a UTF-8 text file: split on newlines only, with decoding errors that name the line."""

from __future__ import annotations

import sys
from pathlib import Path


def read_lines(source: str | Path) -> list[str]:
    """The lines of ``source`` (``-``: standard input), without their ``\\n`` / ``\\r\\n`` endings.

    Only newlines end a line (``str.splitlines`` would also split on form feeds, U+2028 and
    others that can sit inside a text), so line i of the file is item i.
    """
    if str(source) == "-":
        stream = getattr(sys.stdin, "buffer", None)  # a text-only stdin (a test's StringIO) has none
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogatepass")
        name = "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"input file not found: {path}")
        data, name = path.read_bytes(), str(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{name}:{line}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the file's final newline ends the last line; it does not start another
    return [line[:-1] if line.endswith("\r") else line for line in lines]
