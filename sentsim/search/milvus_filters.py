"""Metadata filters as Milvus boolean expressions, over two JSON fields each chunk row carries.

A document's metadata is stored exactly (as JSON text, for what hits and ``get`` return) and
twice more for filtering, so that one expression gives what :mod:`sentsim.search.filters`
promises on a Milvus server and in Milvus Lite alike:

- ``filter_values``: each key with a non-null value, the value as a list (a scalar ``v`` as
  ``[v]``). Equality and ``in`` are then ``json_contains`` / ``json_contains_any`` whether the
  stored value is a scalar or a list; null and missing keys are both absent (``exists``).
- ``filter_numbers``: each key whose value is a number (not a bool), for ranges, so that a
  string such as ``"2021"`` never falls inside ``{"gte": 2020}``.

Integers beyond 64 bits are kept as floats in both, as SQLite does (beyond the floats, left out). Keys and strings are written
as double-quoted literals with ``\\``, ``"``, newline, carriage return and tab escaped.
"""

from __future__ import annotations

from sentsim.search.filters import INT64, RANGES, Condition

VALUES, NUMBERS = "filter_values", "filter_numbers"


def filter_fields(metadata: dict) -> tuple[dict, dict]:
    """The ``(filter_values, filter_numbers)`` of a document's metadata."""
    values, numbers = {}, {}
    for key, value in metadata.items():
        if value is None:
            continue
        values[key] = [
            item for item in map(_comparable, value if isinstance(value, list) else [value]) if item is not _TOO_LARGE
        ]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and _comparable(value) is not _TOO_LARGE:
            numbers[key] = _comparable(value)
    return values, numbers


def milvus_expression(conditions: list[Condition]) -> str:
    """The Milvus boolean expression that holds where every condition does."""
    return " and ".join(f"({_expression(condition)})" for condition in conditions)


def _expression(condition: Condition) -> str:
    values = f"{VALUES}[{literal(condition.key)}]"
    operator = condition.operator
    if operator == "null":
        return f"not exists {values}"
    if operator == "present":
        return f"exists {values}"
    if operator in RANGES:
        return f"{NUMBERS}[{literal(condition.key)}] {RANGES[operator]} {literal(condition.values[0])}"
    contains = f"json_contains_any({values}, [{', '.join(literal(value) for value in condition.values)}])"
    if operator == "ne":  # true where the key is missing too
        return f"not exists {values} or not {contains}"
    return contains


def literal(value: str | int | float | bool) -> str:
    """``value`` as a Milvus expression literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


_TOO_LARGE = object()


def _comparable(value: object) -> object:
    """An integer beyond 64 bits as a float (Milvus holds JSON integers in 64 bits), or ``_TOO_LARGE``
    beyond the floats too (no filter can name it); anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        try:
            return float(value)
        except OverflowError:
            return _TOO_LARGE
    return value
