"""Small checkers for TOML values: each appends a Problem and returns ``BAD`` on failure.

Used by :mod:`edgeort.profiles.schema`; a checker is ``(collector, key, value) -> value``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from edgeort.errors import Problem

__all__ = [
    "BAD",
    "Checker",
    "Collector",
    "block_size",
    "boolean",
    "describe",
    "enum",
    "fraction",
    "integer",
    "section",
    "str_list",
    "str_map",
    "string",
    "suggest",
    "threads",
]

BAD = object()  # a value that failed its check


class Collector:
    """Problems found in one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def bad(self, key: str, message: str) -> object:
        self.problems.append(Problem(self.path, key, message))
        return BAD

    def unknown(self, key: str, name: str, allowed: list[str], what: str = "key") -> None:
        self.bad(key, f"unknown {what} {name!r}{suggest(name, allowed)}")


Checker = Callable[[Collector, str, Any], Any]


def suggest(name: str, allowed: list[str], *, listing: bool = True) -> str:
    import difflib  # only on a problem: kept off the load path

    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (allowed: {', '.join(allowed)})" if listing else ""


_TOML_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (list, "array"),
    (dict, "table"),
)


def describe(value: Any) -> str:
    """``integer 1``, ``string 'x'``, ``boolean true``: how a TOML value is named."""
    for typ, name in _TOML_TYPES:
        if isinstance(value, typ):
            if typ is bool:
                return f"boolean {str(value).lower()}"
            if typ in (list, dict):
                return name
            return f"{name} {value!r}"
    return f"{type(value).__name__} {value!s}"  # TOML dates and times


# ---- scalar checkers -------------------------------------------------------------------


def string(pattern: str | None = None, hint: str = "", *, empty: bool = False) -> Checker:
    regex = re.compile(pattern) if pattern else None

    def check(c: Collector, key: str, v: Any) -> Any:
        if not isinstance(v, str):
            return c.bad(key, f"expected a string, got {describe(v)}")
        if not v and not empty:
            return c.bad(key, "must not be empty")
        if v and regex and not regex.fullmatch(v):
            return c.bad(key, f"invalid value {v!r}: {hint}")
        return v

    return check


def enum(*allowed: str) -> Checker:
    def check(c: Collector, key: str, v: Any) -> Any:
        if not isinstance(v, str):
            return c.bad(key, f"expected a string, got {describe(v)}")
        if v not in allowed:
            shown = [a or '""' for a in allowed]
            return c.bad(key, f"invalid value {v!r}; allowed: {', '.join(shown)}")
        return v

    return check


def boolean(c: Collector, key: str, v: Any) -> Any:
    if not isinstance(v, bool):
        return c.bad(key, f"expected a boolean (true or false), got {describe(v)}")
    return v


def integer(lo: int | None = None, allowed: tuple[int, ...] = ()) -> Checker:
    def check(c: Collector, key: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            return c.bad(key, f"expected an integer, got {describe(v)}")
        if lo is not None and v < lo:
            return c.bad(key, f"must be >= {lo}, got {v}")
        if allowed and v not in allowed:
            return c.bad(key, f"invalid value {v}; allowed: {', '.join(map(str, allowed))}")
        return v

    return check


def fraction(c: Collector, key: str, v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return c.bad(key, f"expected a number, got {describe(v)}")
    if not 0.0 <= v <= 1.0:  # also rejects nan
        return c.bad(key, f"must be between 0 and 1, got {v}")
    return float(v)


def block_size(c: Collector, key: str, v: Any) -> Any:
    v = integer(16)(c, key, v)
    if v is not BAD and v & (v - 1):
        return c.bad(key, f"must be a power of two, got {v}")
    return v


def threads(c: Collector, key: str, v: Any) -> Any:
    if isinstance(v, str):
        return enum("physical", "performance")(c, key, v)
    if isinstance(v, int) and not isinstance(v, bool):
        return integer(0)(c, key, v)
    return c.bad(key, f"expected 'physical', 'performance' or an integer, got {describe(v)}")


# ---- composite checkers ----------------------------------------------------------------


def str_list(item: Checker, *, unique: bool = False) -> Checker:
    def check(c: Collector, key: str, v: Any) -> Any:
        if not isinstance(v, list):
            return c.bad(key, f"expected an array, got {describe(v)}")
        out = [item(c, f"{key}[{i}]", x) for i, x in enumerate(v)]
        if BAD in out:
            return BAD
        if unique and len(set(out)) != len(out):
            return c.bad(key, "values must not repeat")
        return tuple(out)

    return check


def str_map(value_check: Callable[[Collector, str, str], Any] | None = None) -> Checker:
    """A table of string -> string (provider options, session config entries)."""

    def check(c: Collector, key: str, v: Any) -> Any:
        if not isinstance(v, dict):
            return c.bad(key, f"expected a table, got {describe(v)}")
        out: dict[str, str] = {}
        for k, x in v.items():
            sub = f"{key}.{k}" if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'{key}."{k}"'
            if isinstance(x, dict):
                c.bad(sub, 'expected a string, got table (quote dotted keys: "a.b" = "1")')
            elif not isinstance(x, str):
                c.bad(sub, f"expected a string, got {describe(x)} (quote it)")
            elif value_check is None or value_check(c, sub, x) is not BAD:
                out[k] = x
        return out if len(out) == len(v) else BAD

    return check


def section(
    c: Collector, name: str, table: Mapping[str, Any], spec: Mapping[str, Checker]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{name}.{k}"
        check = spec.get(k)
        if check is None:
            c.unknown(key, k, list(spec))
            continue
        value = check(c, key, v)
        if value is not BAD:
            out[k] = value
    return out
