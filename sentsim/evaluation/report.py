"""Write evaluation results as JSON or CSV (atomically)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from sentsim.storage.atomic import write_text_atomic
from sentsim.validation import plain


def check_results_path(path: str | Path) -> Path:
    """``path`` if results can be written there (a .json or .csv name), else a ValueError."""
    path = Path(path)
    if path.suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"{path}: results are written as .json or .csv")
    return path


def write_results(results: dict, path: str | Path) -> None:
    """Write ``results`` to ``path``: ``.json`` as one object, ``.csv`` as ``metric,value`` rows.

    Numpy numbers are written as numbers, NaN and infinity as null (strict JSON)."""
    path = check_results_path(path)
    results = json_safe(results)
    if path.suffix.lower() == ".json":
        text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    elif path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["metric", "value"])
        writer.writerows(  # nested values as JSON in their cell
            (key, json.dumps(value, allow_nan=False) if isinstance(value, (list, dict)) else value)
            for key, value in results.items()
        )
        text = buffer.getvalue()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    except OSError as error:  # name the target, not the temporary file beside it
        raise OSError(f"cannot write {path}: {error.strerror or error}") from None


def json_safe(results: dict) -> dict:
    """``results`` with numpy numbers as Python numbers, arrays and Series as lists (at any depth),
    and NaN / infinity as None (JSON null), for strict JSON."""
    return _plain(results)


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {plain(key): _plain(item) for key, item in value.items()}
    value = plain(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
