"""Metadata filters, translated to an SQL condition on the documents' JSON metadata.

A filter is a dict of ``key -> condition``, all of which must hold:

- a plain value: equality, ``{"lang": "en"}``;
- ``{"in": [...]}``: membership, ``{"lang": {"in": ["en", "de"]}}``;
- ``{"gte"|"gt"|"lte"|"lt": number}``: a numeric range, ``{"year": {"gte": 2020, "lt": 2024}}``;
- ``{"ne": value}``: inequality.
"""

from __future__ import annotations

import json

OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "ne": "!="}


def filter_sql(spec: dict, known_keys: set[str]) -> tuple[str, list]:
    """``(condition, parameters)`` for ``spec`` over ``documents.metadata``; an unknown key raises."""
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"a filter must be a non-empty dict of metadata key -> condition, got {spec!r}")
    clauses, parameters = [], []
    for key, condition in spec.items():
        if key not in known_keys:
            raise ValueError(f"unknown metadata key {key!r} in filter; known keys: {sorted(known_keys)}")
        path = "$." + json.dumps(key)
        value_sql = "json_extract(documents.metadata, ?)"
        if isinstance(condition, dict):
            if not condition:
                raise ValueError(f"filter {key!r}: an empty condition; expected a value or {{operator: operand}}")
            for operator, operand in condition.items():
                if operator == "in":
                    if not isinstance(operand, (list, tuple, set)) or not operand:
                        raise ValueError(f"filter {key!r}: 'in' needs a non-empty list, got {operand!r}")
                    marks = ", ".join("?" for _ in operand)
                    clauses.append(f"{value_sql} IN ({marks})")
                    parameters += [path, *[_sql_value(v) for v in operand]]
                elif operator in OPERATORS:
                    if operator != "ne" and (isinstance(operand, bool) or not isinstance(operand, (int, float))):
                        raise ValueError(f"filter {key!r}: {operator!r} needs a number, got {operand!r}")
                    clauses.append(f"{value_sql} {OPERATORS[operator]} ?")
                    parameters += [path, _sql_value(operand)]
                else:
                    raise ValueError(
                        f"filter {key!r}: unknown operator {operator!r}; expected in, {', '.join(OPERATORS)}"
                    )
        else:
            clauses.append(f"{value_sql} = ?")
            parameters += [path, _sql_value(condition)]
    return " AND ".join(clauses), parameters


def _sql_value(value: object) -> object:
    if isinstance(value, bool):
        return int(value)  # JSON true/false come back from json_extract as 1/0
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise ValueError(f"filter values must be strings, numbers, booleans or null, got {value!r}")
