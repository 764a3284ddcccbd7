"""Atomic file-system writes: temp file beside the target, fsync, rename, fsync the dir.

Every write edgeort makes to a user-visible path goes through here, so fault-injection
tests can patch one place (``edgeort._fs.os``) to fail the k-th call. ``tempfile``,
``shutil`` and ``hashlib`` are imported where they are used: reading a bundle needs none.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "fsync_tree",
    "os_error_text",
    "staging_dir",
]

TMP_PREFIX = ".edgeort-tmp-"


def os_error_text(exc: OSError) -> str:
    """``"No space left on device (ENOSPC) at /path"`` for an OSError."""
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    name = exc.filename
    if isinstance(name, (str, bytes, os.PathLike)):
        name = os.fsdecode(name)
    where = f" at {name}" if name is not None else ""
    return f"{exc.strerror or exc} ({code}){where}"


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable (no-op where unsupported)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (before it is renamed into place)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A fresh temp directory beside ``target``; removed on any failure."""
    import shutil
    import tempfile

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def scratch_cwd(path: Path) -> Iterator[Path]:
    """Run third-party code that writes stray files into the working directory (ORT's
    symbolic shape inference saves ``sym_shape_infer_temp.onnx`` and uuid-named
    ``.data`` files there when it fails) inside ``path`` instead. The working directory
    is process-wide: only for the build side, which is single-threaded."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield Path(path)
    finally:
        os.chdir(old)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
