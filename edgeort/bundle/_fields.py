"""Typed access to one JSON object, recording a JSON-path problem for every bad field.

``Fields.of(value, where, problems)`` wraps a dict (or records "expected an object").
Each getter returns the typed value, or ``None`` after recording a problem, so a parser
keeps going and reports everything wrong with a file at once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from edgeort.bundle._json import Problems, child
from edgeort.bundle._paths import path_problem

__all__ = ["Fields", "is_int"]

_MISSING = object()


def is_int(value: Any) -> bool:
    """A JSON integer (``true`` is not an integer here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _clean_text(value: str) -> bool:
    return not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


@dataclass(slots=True)
class Fields:
    data: dict[str, Any]
    where: str
    problems: Problems

    @classmethod
    def of(cls, value: Any, where: str, problems: Problems) -> Fields | None:
        if not isinstance(value, dict):
            problems.expect(where, value, "an object")
            return None
        return cls(value, where, problems)

    def at(self, key: str) -> str:
        return child(self.where, key)

    def raw(self, key: str, *, required: bool = True) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.problems.add(self.at(key), "missing")
            return _MISSING
        return value

    def text(
        self, key: str, *, required: bool = True, max_len: int = 4096, empty: bool = False
    ) -> str | None:
        value = self.raw(key, required=required)
        if value is _MISSING:
            return None
        if not isinstance(value, str) or (not value and not empty) or len(value) > max_len:
            self.problems.expect(
                self.at(key),
                value,
                f"a {'' if empty else 'non-empty '}string of at most {max_len} characters",
            )
            return None
        if not _clean_text(value):
            self.problems.add(self.at(key), "contains control characters")
            return None
        return value

    def safe_path(self, key: str) -> str | None:
        """A relative bundle path (docs/bundle-format.md section 6); unsafe -> integrity."""
        value = self.raw(key)
        if value is _MISSING:
            return None
        why = path_problem(value)
        if why:
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            self.problems.unsafe(self.at(key), f"unsafe path {shown}: {why}")
            return None
        return str(value)

    def integer(self, key: str, *, minimum: int = 0, maximum: int = 2**63 - 1) -> int | None:
        value = self.raw(key)
        if value is _MISSING:
            return None
        if not is_int(value) or not minimum <= value <= maximum:
            self.problems.expect(self.at(key), value, f"an integer in [{minimum}, {maximum}]")
            return None
        return int(value)

    def obj(self, key: str, *, required: bool = True, nullable: bool = False) -> Fields | None:
        value = self.raw(key, required=required)
        if value is _MISSING or (nullable and value is None):
            return None
        return Fields.of(value, self.at(key), self.problems)

    def items(
        self, key: str, *, required: bool = True, max_items: int = 100_000
    ) -> list[Any] | None:
        value = self.raw(key, required=required)
        if value is _MISSING:
            return None
        if not isinstance(value, list) or len(value) > max_items:
            self.problems.expect(self.at(key), value, f"a list of at most {max_items} items")
            return None
        return value

    def str_map(self, key: str) -> dict[str, str]:
        """An optional object of string -> string (ORT options)."""
        sub = self.obj(key, required=False)
        if sub is None:
            return {}
        out = {}
        for name, value in sub.data.items():
            if isinstance(value, str) and "\x00" not in value and "\x00" not in name:
                out[name] = value
            else:
                self.problems.expect(sub.at(name), value, "a string without NUL")
        return out

    def only(self, allowed: Collection[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.problems.add(
                    self.at(key), f"unknown key (allowed: {', '.join(sorted(allowed))})"
                )
