"""Metadata filters as Milvus boolean expressions, over a JSON field each chunk row carries.

A document's metadata is stored exactly (as JSON text, for what hits and ``get`` return) and once
more, in the JSON field ``filters``, in the shape that lets one expression give what
:mod:`sentsim.search.filters` promises, on a Milvus server as in Milvus Lite:

- ``keys``: the keys whose value is not null: ``json_contains(filters["keys"], k)`` tells a
  present key from a null or missing one (no ``exists`` or ``is null``, whose meaning for JSON
  keys differs between Milvus versions);
- ``values``: each of those keys' value as a list (a scalar ``v`` as ``[v]``), so that equality
  and ``in`` are ``json_contains`` / ``json_contains_any`` whether the value is a scalar or a list;
- ``numbers``: the keys whose value is a number (not a bool), for ranges, so that a string such as
  ``"2021"`` never falls inside ``{"gte": 2020}``.

Integers beyond 64 bits are held as floats, as SQLite does (beyond the floats, left out). Keys and
strings are written as double-quoted literals with ``\\``, ``"``, newline, carriage return and
tab escaped; a key holding ``/`` is refused (Milvus reads it as a JSON path).
"""

from __future__ import annotations

from sentsim.search.filters import INT64, RANGES, Condition

FILTERS = "filters"
_TOO_LARGE = object()


def filter_field(metadata: dict) -> dict:
    """The ``filters`` JSON of a document's metadata."""
    values, numbers = {}, {}
    for key, value in metadata.items():
        if value is None:
            continue
        items = [_comparable(item) for item in (value if isinstance(value, list) else [value])]
        values[key] = [item for item in items if item is not _TOO_LARGE]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and items[0] is not _TOO_LARGE:
            numbers[key] = items[0]
    return {"keys": list(values), "values": values, "numbers": numbers}


def milvus_expression(conditions: list[Condition]) -> str:
    """The Milvus boolean expression that holds where every condition does."""
    return " and ".join(f"({_expression(condition)})" for condition in conditions)


def _expression(condition: Condition) -> str:
    key = condition.key
    if "/" in key:
        raise ValueError(f"filter key {key!r}: the Milvus store cannot filter on keys holding '/' (JSON paths)")
    present = f'json_contains({FILTERS}["keys"], {literal(key)})'
    operator = condition.operator
    if operator == "null":
        return f"not ({present})"
    if operator == "present":
        return present
    if operator in RANGES:
        return f'{FILTERS}["numbers"][{literal(key)}] {RANGES[operator]} {literal(condition.values[0])}'
    values = f'{FILTERS}["values"][{literal(key)}]'
    others = [value for value in condition.values if not isinstance(value, bool)]
    tests = [f"json_contains({values}, {literal(value)})" for value in condition.values if isinstance(value, bool)]
    if others:  # Milvus's json_contains_any takes no booleans
        tests.append(f"json_contains_any({values}, [{', '.join(literal(value) for value in others)}])")
    contains = " or ".join(f"({test})" for test in tests)
    return f"(not ({present})) or (not ({contains}))" if operator == "ne" else contains


def literal(value: str | int | float | bool) -> str:
    """``value`` as a Milvus expression literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def _comparable(value: object) -> object:
    """An integer beyond 64 bits as a float (Milvus holds JSON integers in 64 bits), or ``_TOO_LARGE``
    beyond the floats too (no filter can name it); anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        try:
            return float(value)
        except OverflowError:
            return _TOO_LARGE
    return value
