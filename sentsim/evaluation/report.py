"""Write evaluation results as JSON or CSV (atomically)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sentsim.atomic import write_text_atomic


def write_results(results: dict, path: str | Path) -> None:
    """Write ``results`` to ``path``: ``.json`` as one object, ``.csv`` as ``metric,value`` rows."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(results, indent=2) + "\n"
    elif path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["metric", "value"])
        writer.writerows(results.items())
        text = buffer.getvalue()
    else:
        raise ValueError(f"{path}: results are written as .json or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
