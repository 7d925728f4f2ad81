"""Named choices: one check, whose error names the valid values, for ``str`` Enums and plain tables alike."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import TypeVar

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
