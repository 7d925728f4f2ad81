"""String enums whose ``parse`` names the valid choices when given an unknown one."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

T = TypeVar("T", bound="Choice")


class Choice(str, Enum):
    """A ``str`` Enum with a ``parse`` that explains a bad value."""

    @classmethod
    def parse(cls: type[T], value: str | T, name: str | None = None) -> T:
        """The member named ``value``, or a ValueError naming ``name`` (default: the class) and the valid values."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(repr(member.value) for member in cls)
            raise ValueError(f"unknown {name or cls.__name__.lower()} {value!r}; expected one of {valid}") from None
