"""Strict JSON in, canonical JSON out, and a problem list that names JSON paths.

Bundle JSON is hostile input: size is capped before parsing, duplicate keys, NaN and
deep nesting are refused, and every problem is reported with its JSON path
(``$.variants.cpu.ep``) so one error lists everything wrong with a file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from edgeort._fs import os_error_text
from edgeort.errors import BundleError, IntegrityError

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_BYTES",
    "Problems",
    "canonical_json",
    "compact_json",
    "io_cause",
    "loads_strict",
    "read_json_file",
    "sort_tree",
]

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK})  # Linux/macOS, FreeBSD


class _JsonReject(ValueError):
    """Raised inside json.loads hooks; turned into a BundleError by loads_strict."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonReject(f"duplicate key {key!r}")
        out[key] = value
    return out


def _constant(name: str) -> NoReturn:
    raise _JsonReject(f"{name} is not allowed")


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def loads_strict(data: bytes, *, name: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse bundle JSON bytes; any problem -> BundleError naming ``name``."""
    if len(data) > max_bytes:
        raise BundleError(
            f"{name}: {len(data)} bytes, more than the {max_bytes} allowed", path=name
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(
            f"{name}: not UTF-8 ({exc.reason} at byte {exc.start})", path=name
        ) from None
    if text.startswith("\ufeff"):
        raise BundleError(
            f"{name}: starts with a byte-order mark; write UTF-8 without BOM", path=name
        )
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except RecursionError:
        raise BundleError(
            f"{name}: JSON nested deeper than {MAX_DEPTH} levels", path=name
        ) from None
    except ValueError as exc:  # JSONDecodeError, _JsonReject, int digit limit
        raise BundleError(f"{name}: invalid JSON: {exc}", path=name) from None
    if _depth(value) > MAX_DEPTH:
        raise BundleError(f"{name}: JSON nested deeper than {MAX_DEPTH} levels", path=name)
    return value


def read_json_file(path: Path, *, name: str, max_bytes: int = MAX_JSON_BYTES) -> tuple[Any, bytes]:
    """Read a regular, unlinked, size-capped JSON file; return (value, raw bytes).

    A link or special file is an IntegrityError; a file-system failure (EIO, EACCES, ...)
    a BundleError naming the file and the errno, raised from the OSError."""
    try:
        return _read_json(path, name, max_bytes)
    except FileNotFoundError:
        raise BundleError(f"{name}: missing (looked for {path})", path=path) from None
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS and os.path.islink(path):  # O_NOFOLLOW met a link
            raise IntegrityError(f"{name}: is a symbolic link: {path}", path=path) from None
        raise BundleError(f"{name}: cannot read {path}: {os_error_text(exc)}", path=path) from exc


def io_cause(exc: BundleError) -> OSError | None:
    """The OSError behind a BundleError that reports a file-system failure (raised
    ``from`` it by the readers), else None."""
    cause = exc.__cause__
    return cause if type(exc) is BundleError and isinstance(cause, OSError) else None


def _read_json(path: Path, name: str, max_bytes: int) -> tuple[Any, bytes]:
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            raise IntegrityError(f"{name}: not a regular file with one link: {path}", path=path)
        if st.st_size > max_bytes:
            raise BundleError(
                f"{name}: {st.st_size} bytes, more than the {max_bytes} allowed", path=path
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    return loads_strict(data, name=name, max_bytes=max_bytes), data


def sort_tree(value: Any) -> Any:
    """A copy of ``value`` with every object's keys in sorted order."""
    if isinstance(value, dict):
        return {k: sort_tree(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_tree(v) for v in value]
    return value


def canonical_json(value: Any, *, sort_keys: bool = True) -> bytes:
    """The one text edgeort writes for bundle JSON (byte-identical for equal input).
    ``sort_keys=False`` keeps the given key order (callers pre-sort with ``sort_tree``)."""
    text = json.dumps(value, sort_keys=sort_keys, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def compact_json(value: Any) -> bytes:
    """Compact canonical JSON, ASCII only: the form that is signed."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def child(where: str, key: str | int) -> str:
    """JSON path of ``key`` under ``where``: ``$.a.b``, ``$.a[0]``, ``$.a["x y"]``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if _IDENT.match(key) else f"{where}[{json.dumps(key)}]"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


class Problems:
    """Collects ``JSON path: message`` problems for one file; raise them all at once."""

    def __init__(self, name: str, path: Path | str | None = None) -> None:
        self.name = name
        self.path = path if path is not None else name
        self.items: list[str] = []
        self.integrity = False

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def unsafe(self, where: str, message: str) -> None:
        """A path that escapes or collides: the error becomes an IntegrityError."""
        self.integrity = True
        self.add(where, message)

    def expect(self, where: str, value: Any, expected: str) -> None:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        self.add(where, f"expected {expected}, got {_kind(value)} {shown}")

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def raise_if_any(self, error: type[BundleError] | None = None) -> None:
        """Raise every problem in one error: ``error``, else IntegrityError for unsafe
        paths, else BundleError."""
        if not self.items:
            return
        if len(self.items) == 1:
            message = f"{self.name}: {self.items[0]}"
        else:
            lines = "\n".join(f"  - {item}" for item in self.items[:50])
            more = f"\n  ... and {len(self.items) - 50} more" if len(self.items) > 50 else ""
            message = f"{self.name}: {len(self.items)} problems:\n{lines}{more}"
        error = error or (IntegrityError if self.integrity else BundleError)
        raise error(message, path=self.path)
