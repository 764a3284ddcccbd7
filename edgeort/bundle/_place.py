"""Putting a finished directory or file in place atomically, and cleaning up leftovers.

A bundle is staged in ``.edgeort-tmp-*`` beside its target (``edgeort._fs.staging_dir``)
and then renamed into place. Replacing an existing bundle directory uses
``renameat2(RENAME_EXCHANGE)`` on Linux, so the target is always either the whole old
or the whole new bundle. Elsewhere (or on a file system without it) the old bundle is
first renamed aside to ``.edgeort-tmp-old-<name>-*``; a crash (or a second failure)
between that rename and the next leaves the old bundle there and the target missing,
never half-written; the next writer's ``clean_leftovers`` renames it back. Staging
directories are locked (``flock``) while in use; the next writer removes unlocked
leftovers older than ``STALE_S`` seconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from edgeort._fs import TMP_PREFIX, fsync_dir
from edgeort.errors import BundleError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["STALE_S", "clean_leftovers", "locked", "place_dir", "place_file"]

log = logging.getLogger("edgeort.bundle")

STALE_S = 60.0 if fcntl is not None else 3600.0
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an advisory lock on a staging directory or file while it is being built."""
    fd = os.open(path, os.O_RDONLY)
    try:
        _try_lock(fd)
        yield
    finally:
        os.close(fd)


def clean_leftovers(parent: Path, *, stale_s: float = STALE_S) -> int:
    """Remove unlocked ``.edgeort-tmp-*`` entries in ``parent`` older than ``stale_s``."""
    removed = 0
    try:
        with os.scandir(parent) as it:
            entries = [e for e in it if e.name.startswith(TMP_PREFIX)]
    except OSError:
        return 0
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
            if time.time() - st.st_mtime < stale_s:
                continue
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if not _try_lock(fd):
                continue
            if _restore_aside(parent, entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            removed += 1
            log.info("removed leftover %s", entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _restore_aside(parent: Path, name: str) -> bool:
    """An old bundle moved aside (``old-<target>-<hex8>``) whose target is missing: a
    replace failed twice or crashed between its renames. Rename it back; True if done."""
    head = f"{TMP_PREFIX}old-"
    if not name.startswith(head) or len(name) < len(head) + 10 or name[-9] != "-":
        return False
    target = parent / name[len(head) : -9]
    if os.path.lexists(target):
        return False
    os.rename(parent / name, target)
    log.warning("restored %s from %s (an earlier replace did not finish)", target, name)
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2). False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _check_replaceable(target: Path) -> None:
    if target.is_symlink() or not target.is_dir():
        raise BundleError(
            f"{target} exists and is not a directory; refusing to replace it", path=target
        )
    with os.scandir(target) as it:
        empty = next(it, None) is None
    if not empty and not (target / "manifest.json").is_file():
        raise BundleError(
            f"{target} exists and is not a bundle (no manifest.json); refusing to replace it",
            path=target,
        )


def place_dir(staged: Path, target: Path) -> None:
    """Rename the finished directory ``staged`` to ``target`` (replacing a bundle there)."""
    parent = target.parent
    if not os.path.lexists(target):
        try:
            os.rename(staged, target)
            fsync_dir(parent)
            return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    _check_replaceable(target)
    if _exchange(staged, target):
        fsync_dir(parent)
        shutil.rmtree(staged, ignore_errors=True)  # now the old bundle
        return
    aside = parent / f"{TMP_PREFIX}old-{target.name}-{secrets.token_hex(4)}"
    os.rename(target, aside)
    try:
        os.rename(staged, target)
    except BaseException:
        os.rename(aside, target)
        raise
    fsync_dir(parent)
    shutil.rmtree(aside, ignore_errors=True)


def place_file(staged: Path, target: Path) -> None:
    """os.replace a finished, fsynced file onto ``target`` (never onto a directory)."""
    if target.is_dir() and not target.is_symlink():
        raise BundleError(
            f"{target} is a directory; refusing to replace it with a zip", path=target
        )
    os.replace(staged, target)
    fsync_dir(target.parent)
