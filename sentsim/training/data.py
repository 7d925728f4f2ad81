"""Training data: named columns, validated before the first step.

Columns, by documented names:

- ``sentence1``, ``sentence2`` with ``score`` (regression; ``score_range=(0, 5)`` rescales to
  [0, 1]) or ``label`` (0/1): pair losses (cosine, cosent, contrastive);
- ``anchor``, ``positive`` and optional ``negative`` (or several: ``negative_1`` ... ``negative_n``,
  as ``sentsim mine`` writes them): triplet and in-batch negatives losses (an optional ``label``
  column holds group ids: rows of one group are never negatives of each other);
- ``text`` with ``embedding`` (an ``(n, dim)`` array of a teacher's embeddings): distillation.

Other names are mapped with ``columns={"question": "anchor", ...}``. A model that expects prompts
(``"query: "``, ``"passage: "``) is trained with them: ``prompts={"anchor": "query: ", "positive":
"passage: ", "negative": "passage: "}`` prepends each to its column (a str: to every text column).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentsim.data.columns import require_columns
from sentsim.data.sts import COLUMNS as STS_COLUMNS
from sentsim.data.sts import is_headerless_sts
from sentsim.data.tables import check_renamed, read_table
from sentsim.prompts import with_prompt
from sentsim.validation import nonfinite_row

TEXT_COLUMNS = ("sentence1", "sentence2", "anchor", "positive", "negative", "text")
NUMBERED_NEGATIVE = re.compile(r"^negative_([1-9][0-9]*)$")  # negative_1 ... negative_n: several per row


@dataclass(frozen=True)
class TrainingData:
    """Validated columns: texts as lists of str, ``score`` as float64, ``label`` as int64."""

    columns: dict[str, list | np.ndarray]
    source: str = "training data"

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def rows(self, indices: np.ndarray) -> dict[str, list | np.ndarray]:
        """The columns of the rows at ``indices``."""
        return {
            name: values[indices] if isinstance(values, np.ndarray) else [values[i] for i in indices]
            for name, values in self.columns.items()
        }


def load_training_data(
    source: object,
    *,
    split: str | None = "train",
    columns: dict[str, str] | None = None,
    score_range: tuple[float, float] | None = None,
    prompts: str | dict[str, str] | None = None,
) -> TrainingData:
    """Read and validate training columns from a file, a ``datasets`` object or a Hub name.

    ``source`` is anything :func:`sentsim.data.tables.read_table` reads, the headerless STS-B
    CSV, or a dict of columns. Raises a ValueError naming the column and row of the first
    missing text, bad score or bad label, or of an empty dataset. ``prompts`` prepends a text
    to the texts of each column it names (a str: of every text column).
    """
    if score_range is not None:
        _check_range(score_range)
    if _is_column_dict(source):
        check_renamed(columns, list(source), "training data")
        table, name = {columns.get(k, k) if columns else k: list(v) for k, v in source.items()}, "training data"
    else:
        header = STS_COLUMNS if isinstance(source, (str, Path)) and is_headerless_sts(source) else None
        table, name = read_table(source, split=split, columns=columns, header=header)
    negatives = negative_columns(list(table), name)
    known = [column for column in (*TEXT_COLUMNS, *negatives, "score", "label", "embedding") if column in table]
    if not any(column in table for column in TEXT_COLUMNS):
        raise ValueError(f"{name}: no text columns; expected {', '.join(TEXT_COLUMNS)} (found {list(table)})")
    validated: dict[str, list | np.ndarray] = {}
    for column in known:
        values = list(table[column])
        if column == "score":
            validated[column] = _scores(values, name, score_range)
        elif column == "label":
            validated[column] = _labels(values, name)
        elif column == "embedding":
            validated[column] = _embeddings(table[column], name)
        else:
            validated[column] = _texts(values, column, name)
    lengths = {len(values) for values in validated.values()}
    if lengths == {0}:
        raise ValueError(f"{name}: the dataset is empty")
    if len(lengths) > 1:
        raise ValueError(f"{name}: columns have different lengths: { {k: len(v) for k, v in validated.items()} }")
    for column, prompt in _column_prompts(prompts, validated, name).items():
        validated[column] = with_prompt(prompt, validated[column])
    return TrainingData(validated, name)


def negative_columns(names: list[str], source: str = "training data") -> list[str]:
    """The numbered negative columns among ``names`` (``negative_1`` ... ``negative_n``), in order;
    a gap in the numbers, or a ``negative`` column beside them, is an error."""
    numbered = sorted((int(match[1]), name) for name in names if (match := NUMBERED_NEGATIVE.match(name)))
    if numbered and [number for number, _ in numbered] != list(range(1, len(numbered) + 1)):
        found = ", ".join(name for _, name in numbered)
        raise ValueError(f"{source}: negative columns must run negative_1 ... negative_n without gaps, found {found}")
    if numbered and "negative" in names:
        raise ValueError(
            f"{source}: has both 'negative' and 'negative_1' ...; give one negative column or numbered ones"
        )
    return [name for _, name in numbered]


def _column_prompts(prompts: object, columns: dict, source: str) -> dict[str, str]:
    """``prompts`` as {text column: prompt}; a str applies to every text column (``negative`` names the
    numbered negative columns too)."""
    texts = [column for column in TEXT_COLUMNS if column in columns]
    if prompts is None:
        return {}
    if isinstance(prompts, str):
        return dict.fromkeys(texts + negative_columns(list(columns), source), prompts)
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise TypeError(f"prompts must be a str or a dict of text column -> str, got {prompts!r}")
    numbered = negative_columns(list(columns), source)
    if numbered:
        texts.append("negative")
    unknown = [column for column in prompts if column not in texts]
    if unknown:
        raise ValueError(f"{source}: prompts names {unknown}, not a text column here ({', '.join(texts)})")
    chosen = dict(prompts)
    if "negative" in chosen and numbered:
        chosen |= dict.fromkeys(numbered, chosen.pop("negative"))
    return chosen


def check_fits(data: TrainingData, loss) -> None:
    """Raise a ValueError unless ``data`` has the columns (and label kind) that ``loss`` needs."""
    for needed in ("columns", "target", "config"):
        if not hasattr(loss, needed):
            raise TypeError(
                f"loss {type(loss).__name__} has no {needed!r}: a sentsim loss declares the columns it reads, "
                "its target and its settings (config(), recorded in the run folder); see sentsim.training.losses"
            )
    optional = set(getattr(loss, "optional_columns", ()))
    required = [column for column in loss.columns if column not in optional]
    present = list(data.columns) + (["negative"] if negative_columns(list(data.columns)) else [])
    try:
        require_columns(present, required, data.source)
    except ValueError:
        raise ValueError(
            f"{type(loss).__name__} needs the columns {', '.join(loss.columns)}"
            f"{' (' + ', '.join(optional) + ' optional)' if optional else ''}; "
            f"{data.source} has {', '.join(data.columns)}"
        ) from None
    if loss.target in ("score", "embedding") and loss.target not in data.columns:
        raise ValueError(
            f"{type(loss).__name__} needs a {loss.target!r} column; {data.source} has {', '.join(data.columns)}"
        )
    bounds = getattr(loss, "score_bounds", None)
    if bounds is not None:
        scores = data.columns["score"]
        outside = np.flatnonzero((scores < bounds[0]) | (scores > bounds[1]))
        if outside.size:
            row = int(outside[0])
            raise ValueError(
                f"{data.source}: column 'score', row {row}: {scores[row]} is outside {bounds}, the range "
                f"{type(loss).__name__} compares scores with; rescale with score_range=(low, high) "
                "(sentsim train --score-range LOW HIGH)"
            )
    if loss.target == "label":
        if "label" not in data.columns:
            raise ValueError(
                f"{type(loss).__name__} needs a 0/1 'label' column; {data.source} has {', '.join(data.columns)}"
            )
        bad = np.flatnonzero(~np.isin(data.columns["label"], (0, 1)))
        if bad.size:
            row = int(bad[0])
            raise ValueError(
                f"{data.source}: column 'label', row {row}: {type(loss).__name__} needs 0 or 1, got {data.columns['label'][row]}"
            )


def _texts(values: list, column: str, source: str) -> list[str]:
    for row, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{source}: column {column!r}, row {row}: expected a non-empty text, got {value!r}")
    return values


def _scores(values: list, source: str, score_range: tuple[float, float] | None) -> np.ndarray:
    scores = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or isinstance(value, bool):
            raise ValueError(f"{source}: column 'score', row {row}: expected a finite number, got {value!r}")
        if score_range is not None and not score_range[0] <= number <= score_range[1]:
            raise ValueError(f"{source}: column 'score', row {row}: {number} is outside the score range {score_range}")
        scores[row] = number
    if score_range is not None:
        low, high = score_range
        scores = (scores - low) / (high - low)
    return scores


def _check_range(score_range: object) -> None:
    try:
        low, high = (float(bound) for bound in score_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"score_range must be (low, high), two numbers, got {score_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"score_range must be (low, high) with finite low < high, got {score_range!r}")


def _is_column_dict(source: object) -> bool:
    """A plain ``{column: values}`` dict (a ``datasets.DatasetDict`` is a dict of splits)."""
    datasets = sys.modules.get("datasets")  # not imported: source cannot be one of its objects
    return isinstance(source, dict) and not (datasets is not None and isinstance(source, datasets.DatasetDict))


def _embeddings(values: object, source: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{source}: column 'embedding' must be an (n, dim) array, got shape {array.shape}")
    bad = nonfinite_row(array)
    if bad is not None:
        raise ValueError(f"{source}: column 'embedding', row {bad}: NaN or infinity")
    return array


def _labels(values: list, source: str) -> np.ndarray:
    labels = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        if isinstance(value, str):  # a CSV cell: "1", or "1.0" as pandas writes integer columns with gaps
            try:
                value = float(value) if "." in value else int(value)
            except ValueError:
                pass
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        if isinstance(value, (bool, np.bool_)):  # a bool column (pandas' is_duplicate): 1 / 0
            value = int(value)
        if not isinstance(value, (int, np.integer)):
            raise ValueError(f"{source}: column 'label', row {row}: expected an integer label, got {value!r}")
        labels[row] = value
    return labels
