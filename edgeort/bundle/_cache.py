"""The verified-files cache: skip re-hashing files that have not changed.

One small JSON file, ``<cache>/verified.json``, maps a file's real path to the stat
fields that change whenever its bytes can have changed (size, mtime_ns, ctime_ns,
inode, device) plus the sha256 it had then. ``ctime`` cannot be set from user space,
so ``touch -d`` after an edit does not fool it. The cache is an optimisation only: a
missing, corrupt, read-only or foreign-owned cache is logged and ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgeort import _fs
from edgeort._dirs import cache_dir
from edgeort._log import get_logger
from edgeort.bundle._json import canonical_json, loads_strict
from edgeort.errors import BundleError

__all__ = ["FileCache", "private_dir", "stat_stamp"]

log = get_logger("edgeort.bundle")

MAX_ENTRIES = 20_000
_STAT_KEYS = ("size", "mtime_ns", "ctime_ns", "ino", "dev")


def stat_stamp(st: os.stat_result) -> dict[str, int]:
    """What a cache entry keys a file on: a changed file (size, times, inode) misses."""
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


def private_dir(path: Path) -> str | None:
    """Create ``path`` (mode 0700) if needed; say why it is unusable, or None."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path)
    except OSError as exc:
        return f"cannot create {path}: {exc.strerror or exc}"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{path} is owned by another user (uid {st.st_uid})"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


class FileCache:
    """Verified file stamps, loaded once per verification and saved at the end."""

    def __init__(self, path: Path | None, entries: dict[str, Any] | None = None) -> None:
        self.path = path
        self.entries: dict[str, Any] = entries or {}
        self.dirty = False

    @classmethod
    def disabled(cls) -> FileCache:
        return cls(None)

    @classmethod
    def open(cls) -> FileCache:
        directory = cache_dir()
        why = private_dir(directory)
        if why:
            log.warning("verification cache disabled: %s", why)
            return cls.disabled()
        path = directory / "verified.json"
        try:
            data = loads_strict(path.read_bytes(), name=str(path))
        except FileNotFoundError:
            data = {}
        except (OSError, BundleError) as exc:
            log.warning("ignoring unreadable verification cache %s: %s", path, exc)
            data = {}
        return cls(path, data if isinstance(data, dict) else {})

    def get(self, real: str, st: os.stat_result) -> dict[str, Any] | None:
        entry = self.entries.get(real)
        if not isinstance(entry, dict) or self.path is None:
            return None
        stamp = stat_stamp(st)
        if any(entry.get(k) != stamp[k] for k in _STAT_KEYS):
            return None
        return entry

    def put(self, real: str, st: os.stat_result, **data: Any) -> None:
        if self.path is None:
            return
        self.entries.pop(real, None)  # re-insert at the end: oldest entries go first
        self.entries[real] = {**stat_stamp(st), **data}
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        if len(self.entries) > MAX_ENTRIES:
            keep = list(self.entries.items())[-MAX_ENTRIES // 2 :]
            self.entries = dict(keep)
        try:
            _fs.atomic_write_bytes(self.path, canonical_json(self.entries))
        except OSError as exc:
            log.warning("cannot save verification cache %s: %s", self.path, exc)
        self.dirty = False
