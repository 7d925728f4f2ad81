"""Validation of user input at the API boundary: texts, numbers, flags and named choices, with errors that name them."""

from __future__ import annotations

import math
import numbers
import os
import reprlib
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import TypeVar

import numpy as np


def is_integer(value: object) -> bool:
    """An int or numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """A real number (int, float, numpy scalar), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(
    name: str, value: object, *, minimum: int | None = None, maximum: int | None = None, optional: bool = False
) -> int | None:
    """``value`` as an int (numpy ints too), or an error naming ``name`` and what it must be: a
    TypeError unless it is an int (a bool or float is refused; None passes when ``optional``), a
    ValueError outside ``[minimum, maximum]``."""
    if optional and value is None:
        return None
    if not is_integer(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            bounds = f" between {minimum} and {maximum}"
        elif minimum is not None:
            bounds = f" >= {minimum}"
        else:
            bounds = f" <= {maximum}" if maximum is not None else ""
        error = ValueError if is_integer(value) else TypeError
        raise error(f"{name} must be an int{bounds}{' or None' if optional else ''}, got {value!r}")
    return int(value)


def check_path(name: str, value: object) -> Path:
    """``value`` as a Path, or a TypeError naming ``name`` unless it is a str or path."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or path, got {type(value).__name__}")
    return Path(value)


def nonfinite_row(array: np.ndarray) -> int | None:
    """The first row of a 2-D ``array`` holding NaN or infinity, or None."""
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    return int(bad[0]) if bad.size else None


def check_instance(name: str, value: object, expected: type, made_by: str) -> None:
    """A TypeError naming ``name``, what it should be and what makes one, unless ``value`` is an ``expected``."""
    if not isinstance(value, expected):
        raise TypeError(f"{name} must be {expected.__name__} (from {made_by}), got {type(value).__name__}")


def check_flag(name: str, value: object, *, optional: bool = False) -> bool | None:
    """``value`` as a bool, or a TypeError naming ``name`` unless it is one (or None when ``optional``)."""
    if optional and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True{', False or None' if optional else ' or False'}, got {value!r}")
    return bool(value)


def finite_or_none(name: str, value: object) -> float | None:
    """``value`` as a float (or None), or a ValueError naming ``name`` unless it is a finite number."""
    if value is not None and (not is_real(value) or not math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number or None, got {value!r}")
    return None if value is None else float(value)


def positive_number(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float, or a ValueError naming ``name`` unless it is a finite number > 0 (>= 0)."""
    if not is_real(value) or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(value)


def plain(value: object) -> object:
    """numpy scalars as Python values; arrays, pandas Series and Index as lists (one level); anything
    else unchanged. For values that are compared, stored in JSON or bound to SQL."""
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


def single_text(value: object) -> object:
    """A 0-d numpy array holding a string (``np.array("text")``) as that str; anything else unchanged."""
    if (
        isinstance(value, np.ndarray)
        and value.ndim == 0
        and (value.dtype.kind in "US" or value.dtype.kind == "O" and isinstance(value.item(), str))
    ):
        return str(value.item())
    return value


_SHORT = reprlib.Repr()  # items quoted in messages, cut short (a bad item may be megabytes)
_SHORT.maxstring = _SHORT.maxother = 60


def validate_texts(texts: object, name: str = "texts") -> list[str]:
    """Return ``texts`` as a list of str, or raise an error naming the first bad item.

    Accepts a list, tuple, numpy array, pandas Series or any other iterable of str. A single
    string is not accepted here (callers decide what one string means).
    """
    items = _items(texts, name, "str")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            kind = "NaN" if isinstance(item, float) and item != item else type(item).__name__
            raise TypeError(f"{name}[{index}] is {kind} ({_SHORT.repr(item)}); expected str")
        _check_unicode(item, f"{name}[{index}]")
    return items


def validate_ids(ids: object, name: str = "ids") -> list[str]:
    """``ids`` as a list of document ids (see :func:`document_id`), or an error naming the first bad item."""
    return [document_id(item, f"{name}[{index}]") for index, item in enumerate(_items(ids, name, "str or int"))]


def document_id(value: object, name: str = "doc_id") -> str:
    """A document id as it is stored: a str, or an int (numpy ints too; not a bool) as its decimal
    digits, so ``7`` and ``"7"`` are one id; anything else is a TypeError naming ``name``."""
    if is_integer(value):
        return str(int(value))
    if not isinstance(value, str):
        kind = "NaN" if isinstance(value, float) and value != value else type(value).__name__
        raise TypeError(f"{name} is {kind} ({_SHORT.repr(value)}); ids are str or int")
    _check_unicode(value, name)
    return str(value)  # numpy's str_ as a plain str


def _items(values: object, name: str, what: str) -> list:
    """``values`` as a list, or a TypeError naming ``name`` for one value or a container without order."""
    if isinstance(single_text(values), str):
        raise TypeError(f"{name} must be a list of {what} here, got a single str")
    if (
        isinstance(values, (bytes, dict, set, frozenset))
        or hasattr(values, "columns")
        or not isinstance(values, Iterable)
    ):
        # dicts iterate their keys, sets have no order, data frames iterate their column names
        raise TypeError(f"{name} must be a list of {what} (or a pandas Series), got {type(values).__name__}")
    return list(values)


def _check_unicode(text: str, name: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"{name} is not valid Unicode text ({error.reason} at position {error.start})") from None


T = TypeVar("T", bound="Choice")


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices`` (a tuple, or a dict's keys), else a ValueError naming them."""
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    valid = ", ".join(repr(choice) for choice in choices)
    raise ValueError(f"unknown {name} {value!r}; expected one of {valid}")


class Choice(str, Enum):
    """A ``str`` Enum with a ``parse`` that explains a bad value."""

    @classmethod
    def parse(cls: type[T], value: str | T, name: str | None = None) -> T:
        """The member named ``value``, or a ValueError naming ``name`` (default: the class) and the valid values."""
        if isinstance(value, cls):
            return value
        return cls(check_choice(name or cls.__name__.lower(), value, [member.value for member in cls]))
