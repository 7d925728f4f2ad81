"""Metadata filters: checked once into :class:`Condition` s, then rendered for a store (here SQL).

A filter is a dict of ``key -> condition``, all of which must hold:

- a plain value: equality, ``{"lang": "en"}``;
- ``{"in": [...]}``: membership, ``{"lang": {"in": ["en", "de"]}}``;
- ``{"gte"|"gt"|"lte"|"lt": number}``: a numeric range, ``{"year": {"gte": 2020, "lt": 2024}}``;
- ``{"ne": value}``: inequality.

Where a document's value is a list (``{"tags": ["cat", "pet"]}``), equality means the list
contains the value, ``in`` that it contains one of them, and ``ne`` that it does not contain it.
``None`` matches a null or missing key (``{"ne": None}``: present and not null). Ranges
match numbers only: a string such as ``"2021"`` is never inside ``{"gte": 2020}``. Integers in a
filter must fit in 64 bits, as SQLite's and Milvus's do (beyond them numbers are held as floats,
where ``10**30`` and ``10**30 + 1`` are equal, so no comparison with them could be exact). A
document without the key matches no condition but ``None``, and ``ne`` holds for it. A key that no
document has is no error: it is missing everywhere (so what a filter means never depends on
which documents happen to be stored).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from sentsim.validation import plain

RANGES = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
INT64 = (-(2**63), 2**63 - 1)  # SQLite's and Milvus's integers
VALUE = "json_extract(documents.metadata, ?)"
TYPE = "json_type(documents.metadata, ?)"
ELEMENT = "EXISTS (SELECT 1 FROM json_each(documents.metadata, ?) AS e WHERE e.value {test})"
ONE_OF = "IN (SELECT value FROM json_each(?))"  # the values bound once, as a JSON array (no parameter limit)


@dataclass(frozen=True)
class Condition:
    """One checked test on a metadata key.

    ``operator`` is ``in`` (the value, or an element of a list value, is one of ``values``),
    ``ne`` (neither is ``values[0]``; true where the key is missing), ``null`` (null or
    missing), ``present`` (neither), or a range (``gt``, ``gte``, ``lt``, ``lte``: a number
    compared with ``values[0]``).
    """

    key: str
    operator: str
    values: tuple = ()


def parse_filter(spec: dict) -> list[Condition]:
    """The conditions of ``spec``, all of which must hold, or an error naming what is wrong."""
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"a filter must be a non-empty dict of metadata key -> condition, got {spec!r}")
    conditions = []
    for key, condition in spec.items():
        if not isinstance(key, str):
            raise TypeError(f"filter keys are metadata keys (str), got {key!r}")
        if isinstance(condition, dict) and not condition:
            raise ValueError(f"filter {key!r}: an empty condition; expected a value or {{operator: operand}}")
        if '"' in key:
            raise ValueError(f"filter key {key!r}: metadata keys cannot contain a double quote")
        for operator, operand in condition.items() if isinstance(condition, dict) else [("eq", condition)]:
            conditions.append(_condition(key, operator, plain(operand)))
    return conditions


def _condition(key: str, operator: str, operand: object) -> Condition:
    if operator in ("eq", "ne"):
        if operand is None:
            return Condition(key, "null" if operator == "eq" else "present")
        return Condition(key, "in" if operator == "eq" else "ne", (_value(key, operand),))
    if operator == "in":
        if not isinstance(operand, (list, tuple, set)) or not operand:
            raise ValueError(f"filter {key!r}: 'in' needs a non-empty list, got {operand!r}")
        if any(value is None for value in operand):
            raise ValueError(f"filter {key!r}: 'in' takes no None; use {{{key!r}: None}} for a null or missing key")
        return Condition(key, "in", tuple(_value(key, value) for value in operand))
    if operator in RANGES:
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            raise ValueError(f"filter {key!r}: {operator!r} needs a number, got {operand!r}")
        return Condition(key, operator, (_value(key, operand),))
    raise ValueError(f"filter {key!r}: unknown operator {operator!r}; expected in, ne, {', '.join(RANGES)}")


def _value(key: str, value: object) -> str | int | float | bool:
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"filter values must be finite, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        raise ValueError(
            f"filter {key!r}: {value} is outside the 64-bit integers a filter compares (-2**63 to 2**63 - 1)"
        )
    if isinstance(value, (str, int, float)):
        return value
    raise ValueError(f"filter values must be strings, numbers, booleans or null, got {value!r}")


def filter_sql(conditions: list[Condition]) -> tuple[str, list]:
    """``(condition, parameters)`` of ``conditions`` over ``documents.metadata``."""
    clauses, parameters = [], []
    for condition in conditions:
        path = "$." + json.dumps(condition.key, ensure_ascii=False)  # the key as the stored JSON spells it
        clause, values = _sql(condition, path)
        clauses.append(clause)
        parameters += values
    return " AND ".join(clauses), parameters


def _sql(condition: Condition, path: str) -> tuple[str, list]:
    operator = condition.operator
    if operator in ("null", "present"):
        return f"{VALUE} IS NULL" if operator == "null" else f"NOT COALESCE({VALUE} IS NULL, 0)", [path]
    if operator in RANGES:
        return f"({TYPE} IN ('integer', 'real') AND {VALUE} {RANGES[operator]} ?)", [path, path, condition.values[0]]
    values = json.dumps([int(v) if isinstance(v, bool) else v for v in condition.values])  # JSON true is 1 in SQL
    clause = f"({VALUE} {ONE_OF} OR ({TYPE} = 'array' AND {ELEMENT.format(test=ONE_OF)}))"
    if operator == "ne":  # also true where the key is missing (the test is then NULL)
        clause = f"NOT COALESCE({clause}, 0)"
    return clause, [path, values, path, path, values]
