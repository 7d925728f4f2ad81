"""Metadata filters, translated to an SQL condition on the documents' JSON metadata.

A filter is a dict of ``key -> condition``, all of which must hold:

- a plain value: equality, ``{"lang": "en"}``;
- ``{"in": [...]}``: membership, ``{"lang": {"in": ["en", "de"]}}``;
- ``{"gte"|"gt"|"lte"|"lt": number}``: a numeric range, ``{"year": {"gte": 2020, "lt": 2024}}``;
- ``{"ne": value}``: inequality.

Where a document's value is a list (``{"tags": ["cat", "pet"]}``), equality means the list
contains the value, ``in`` that it contains one of them, and ``ne`` that it does not contain it.
``None`` matches a null or missing key (``{"ne": None}``: present and not null). Ranges
match numbers only: a string such as ``"2021"`` is never inside ``{"gte": 2020}``. Integers in a
filter must fit in 64 bits, as SQLite's do (beyond them it holds numbers as floats, where
``10**30`` and ``10**30 + 1`` are equal, so no comparison with them could be exact). A document
without the key matches no condition but ``None``, and ``ne`` holds for it. A key that no
document has is no error: it is missing everywhere (so what a filter means never depends on
which documents happen to be stored).
"""

from __future__ import annotations

import json
import math

from sentsim.validation import plain

RANGES = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
INT64 = (-(2**63), 2**63 - 1)  # SQLite's integers
VALUE = "json_extract(documents.metadata, ?)"
TYPE = "json_type(documents.metadata, ?)"
ELEMENT = "EXISTS (SELECT 1 FROM json_each(documents.metadata, ?) AS e WHERE e.value {test})"
ONE_OF = "IN (SELECT value FROM json_each(?))"  # the values bound once, as a JSON array (no parameter limit)


def filter_sql(spec: dict) -> tuple[str, list]:
    """``(condition, parameters)`` for ``spec`` over ``documents.metadata``."""
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"a filter must be a non-empty dict of metadata key -> condition, got {spec!r}")
    clauses, parameters = [], []
    for key, condition in spec.items():
        if not isinstance(key, str):
            raise TypeError(f"filter keys are metadata keys (str), got {key!r}")
        if isinstance(condition, dict) and not condition:
            raise ValueError(f"filter {key!r}: an empty condition; expected a value or {{operator: operand}}")
        if '"' in key:
            raise ValueError(f"filter key {key!r}: metadata keys cannot contain a double quote")
        path = "$." + json.dumps(key, ensure_ascii=False)  # the key as the stored JSON spells it
        for operator, operand in condition.items() if isinstance(condition, dict) else [("eq", condition)]:
            clause, values = _condition(key, path, operator, plain(operand))
            clauses.append(clause)
            parameters += values
    return " AND ".join(clauses), parameters


def _condition(key: str, path: str, operator: str, operand: object) -> tuple[str, list]:
    """One ``key operator operand`` test as SQL and its parameters."""
    if operator == "eq":
        return _contains(key, path, [operand])
    if operator == "in":
        if not isinstance(operand, (list, tuple, set)) or not operand:
            raise ValueError(f"filter {key!r}: 'in' needs a non-empty list, got {operand!r}")
        if any(value is None for value in operand):
            raise ValueError(f"filter {key!r}: 'in' takes no None; use {{{key!r}: None}} for a null or missing key")
        return _contains(key, path, list(operand))
    if operator == "ne":  # also true where the key is missing (the test below is then NULL)
        clause, parameters = _contains(key, path, [operand])
        return f"NOT COALESCE({clause}, 0)", parameters
    if operator in RANGES:
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            raise ValueError(f"filter {key!r}: {operator!r} needs a number, got {operand!r}")
        return f"({TYPE} IN ('integer', 'real') AND {VALUE} {RANGES[operator]} ?)", [
            path,
            path,
            _sql_value(key, operand),
        ]
    raise ValueError(f"filter {key!r}: unknown operator {operator!r}; expected in, ne, {', '.join(RANGES)}")


def _contains(key: str, path: str, values: list) -> tuple[str, list]:
    """The value at ``path`` is one of ``values``, or is a list holding one of them (None: null or missing)."""
    if values == [None]:
        return f"{VALUE} IS NULL", [path]
    values = json.dumps([_sql_value(key, value) for value in values])
    clause = f"({VALUE} {ONE_OF} OR ({TYPE} = 'array' AND {ELEMENT.format(test=ONE_OF)}))"
    return clause, [path, values, path, path, values]


def _sql_value(key: str, value: object) -> object:
    value = plain(value)
    if isinstance(value, bool):
        return int(value)  # JSON true/false come back from json_extract as 1/0
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"filter values must be finite, got {value!r}")
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise ValueError(
            f"filter {key!r}: {value} is outside the 64-bit integers SQLite compares (-2**63 to 2**63 - 1)"
        )
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise ValueError(f"filter values must be strings, numbers, booleans or null, got {value!r}")
