"""Parsed built-in profile tables, cached by file stat: a cold ``edgeort.load()`` reads
the few built-in profiles its bundle names without importing :mod:`tomllib` (about 4 ms
with the parse).

One JSON file, ``<cache>/profile-tables.json``, maps a profile file's real path to the
stat fields that change whenever its bytes can have changed (size, ``mtime_ns``,
``ctime_ns``, inode, device; the verification cache's rule) plus the TOML table parsed
from it. Only the parse is skipped: a cached table goes through the same schema checks
and ``extends`` resolution as a freshly parsed one. A table that JSON cannot carry
exactly (a TOML date, a non-finite float) is not cached. The cache is an optimisation
only: a missing, corrupt, unwritable or foreign-owned cache directory is ignored.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from edgeort._dirs import cache_dir
from edgeort._log import get_logger
from edgeort.bundle._cache import private_dir, stat_stamp

__all__ = ["lookup", "store"]

log = get_logger(__name__)

FILE_NAME = "profile-tables.json"
MAX_ENTRIES = 200
_entries: dict[str, Any] | None = None  # loaded once per process


def _directory() -> Path | None:
    """The cache directory when it is ours (created 0700 if missing), else None: someone
    else could write the tables we would trust (the verification cache's rule)."""
    directory = cache_dir()
    return None if private_dir(directory) else directory


def _load() -> dict[str, Any]:
    global _entries
    if _entries is None:
        _entries = {}
        directory = _directory()
        if directory is not None:
            try:
                data = json.loads((directory / FILE_NAME).read_bytes())
            except (OSError, ValueError, RecursionError) as exc:
                if not isinstance(exc, FileNotFoundError):
                    log.debug("ignoring profile table cache: %s", exc)
                data = {}
            _entries = data if isinstance(data, dict) else {}
    return _entries


def _exact(value: Any) -> bool:
    """JSON carries ``value`` back as an equal value of the same types."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _exact(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_exact(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool))


def _copy(table: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(table))
    return copied


def lookup(path: Path) -> dict[str, Any] | None:
    """The table cached for ``path`` if the file is unchanged since, else None."""
    try:
        st = os.stat(path)
        real = os.path.realpath(path)
    except OSError:
        return None
    entry = _load().get(real)
    if not isinstance(entry, dict) or any(entry.get(k) != v for k, v in stat_stamp(st).items()):
        return None
    table = entry.get("table")
    try:
        if not isinstance(table, dict) or not _exact(table):
            return None
        return _copy(table)  # the caller may change it; the cache keeps its own
    except RecursionError:  # nested deeper than any profile: not a table we wrote
        return None


def store(path: Path, table: dict[str, Any]) -> None:
    """Remember ``table`` as parsed from ``path`` (atomically; failures are ignored)."""
    if not _exact(table):
        return
    directory = _directory()
    if directory is None:
        return
    try:
        st = os.stat(path)
        real = os.path.realpath(path)
    except OSError:
        return
    entries = _load()
    entries.pop(real, None)
    entries[real] = {**stat_stamp(st), "table": _copy(table)}
    while len(entries) > MAX_ENTRIES:
        entries.pop(next(iter(entries)))
    from edgeort import _fs

    try:
        _fs.atomic_write_bytes(directory / FILE_NAME, json.dumps(entries).encode("utf-8"))
    except OSError as exc:
        log.debug("cannot save profile table cache: %s", exc)
