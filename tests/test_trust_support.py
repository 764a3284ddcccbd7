"""Helpers for the trust tests under faults and load (no tests here).

:class:`FaultFS` wraps the real file-system functions the bundle writer and the zip
extractor use (``os``, ``io``/``open``, ``shutil``, ``tempfile``, ``fcntl.flock`` and the
``renameat2`` exchange) and makes the k-th call raise a real ``OSError(errno)``: the code
under test runs against the real file system, only one call fails, as a full disk or a
failing device would make it fail. It also counts the calls of a clean run, so a test can
fail every one of them in turn.

``EDGEORT_SOAK=1`` makes :func:`size` return the long-run sizes, and
``EDGEORT_SOAK_STATS=<file>`` makes :func:`record` append each test's figures there
(``benchmarks/soak.py`` sets both).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeort._fs import TMP_PREFIX
from edgeort.bundle import TensorSpec, VariantSpec, write_bundle

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SOAK = os.environ.get("EDGEORT_SOAK") == "1"


def size(ci: int, soak: int) -> int:
    """``ci`` in the normal suite, ``soak`` under ``EDGEORT_SOAK=1``."""
    return soak if SOAK else ci


def record(name: str, **stats: Any) -> None:
    """Append one JSON line of figures to ``$EDGEORT_SOAK_STATS`` (benchmarks/soak.py
    reads them); a no-op otherwise."""
    path = os.environ.get("EDGEORT_SOAK_STATS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": name, **stats}, sort_keys=True, default=str) + "\n")


# --------------------------------------------------------------------------- bundles

BIAS = np.arange(4, dtype=np.float32)


def add_model(path: Path, bias: np.ndarray = BIAS) -> Path:
    """y = x + bias, x float32[N, 4] (a few hundred bytes; its bytes depend on ``bias``)."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "B"], ["y"])],
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(np.asarray(bias, dtype=np.float32), "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, path)
    return path


def add_spec(src: Path, name: str = "cpu-fp32") -> VariantSpec:
    """The VariantSpec of an ``add_model`` in ``src/model.onnx``."""
    return VariantSpec(
        name=name,
        ep="CPUExecutionProvider",
        device="cpu",
        source_dir=src,
        model_file="model.onnx",
        provider_options={},
        session_options={"session.intra_op.allow_spinning": "0"},
        profile="generic-cpu",
        profile_version="1",
        precision="fp32",
        inputs=[TensorSpec("x", "float32", ("N", 4))],
        outputs=[TensorSpec("y", "float32", ("N", 4))],
        ir_version=9,
        opsets={"": 17},
        min_ort="1.17",
        ep_package="onnxruntime",
        metadata={"recipe": None, "latency": None, "gates": []},
    )


def source_dir(tmp: Path, version: str, *, external: bool = False) -> Path:
    """A variant source dir whose model differs per ``version`` (bias = arange + version);
    with ``external`` it also holds an extra file, so old and new have different file lists."""
    src = tmp / f"src-{version}"
    if not src.exists():
        add_model(src / "model.onnx", BIAS + float(version))
        if external:
            (src / "labels.txt").write_text("\n".join(f"class{i}" for i in range(64)))
    return src


def write_version(tmp: Path, out: Path, version: str, *, zip: bool = False) -> Path:
    src = source_dir(tmp, version, external=version == "2")
    return write_bundle(out, [add_spec(src)], package_name="demo", package_version=version, zip=zip)


def leftovers(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(TMP_PREFIX))


def age_leftovers(directory: Path, seconds: float = 3600.0) -> None:
    """Make leftovers look old, as the next writer would find them after a crash."""
    for name in leftovers(directory):
        path = directory / name
        when = path.lstat().st_mtime - seconds
        os.utime(path, (when, when), follow_symlinks=False)


# --------------------------------------------------------------------------- faults

ERRNOS = {"ENOSPC": errno.ENOSPC, "EIO": errno.EIO, "EACCES": errno.EACCES}


class _File:
    """A real file object whose read/write/flush calls are counted (and can fail)."""

    def __init__(self, fs: FaultFS, raw: Any) -> None:
        self._fs = fs
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)

    def __enter__(self) -> _File:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.__exit__(*exc)

    def read(self, *args: Any) -> Any:
        self._fs.hit("file.read")
        return self._raw.read(*args)

    def readinto(self, *args: Any) -> Any:
        self._fs.hit("file.readinto")
        return self._raw.readinto(*args)

    def write(self, data: Any) -> Any:
        self._fs.hit("file.write")
        return self._raw.write(data)

    def flush(self) -> None:
        self._fs.hit("file.flush")
        self._raw.flush()


_OS_CALLS = (
    "open", "read", "write", "fsync", "fdatasync", "replace", "rename", "mkdir", "makedirs",
    "rmdir", "unlink", "remove", "chmod", "scandir", "stat", "lstat", "fstat", "utime",
    "link", "symlink", "dup", "fdopen",
)  # fmt: skip


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_MUTATING = frozenset(
    {"file.write", "file.flush", "os.write", "os.fsync", "os.fdatasync", "os.replace"}
    | {"os.rename", "os.mkdir", "os.makedirs", "os.chmod", "os.utime", "os.link", "os.symlink"}
    | {"shutil.copyfile", "shutil.copy2", "edgeort.bundle._place._exchange"}
)


def _mutates(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Does this call write (so that a full disk can fail it)?"""
    if name in _MUTATING:
        return True
    if name == "os.open":
        flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
        return bool(flags & _WRITE_FLAGS)
    if name in ("open", "io.open", "os.fdopen"):
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        return isinstance(mode, str) and any(c in mode for c in "wxa+")
    return False


class FaultFS:
    """Count or fail file-system calls made by the current thread while armed.

    ``fail_at=k`` makes the k-th call raise ``OSError(err)``; with ``sticky`` every later
    call fails too. ENOSPC only ever fails calls that write (a full disk still reads):
    the first writing call at or after k, and with ``sticky`` every later writing call.
    ``calls`` counts by function name; ``failed`` lists the calls that failed.
    """

    def __init__(self, *, fail_at: int = 0, err: int = errno.EIO, sticky: bool = False) -> None:
        self.fail_at = fail_at
        self.err = err
        self.sticky = sticky
        self.n = 0
        self.calls: Counter[str] = Counter()
        self.failed: list[str] = []
        self.first_writes = False  # did the first failed call write?
        self._thread: int | None = None

    def hit(
        self, name: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> None:
        if threading.get_ident() != self._thread:
            return
        self.n += 1
        self.calls[name] += 1
        if not self.fail_at or self.n < self.fail_at:
            return
        if self.err == errno.ENOSPC and not _mutates(name, args, kwargs or {}):
            return
        if self.failed and not self.sticky:
            return
        if not self.failed:
            self.first_writes = _mutates(name, args, kwargs or {})
        self.failed.append(name)
        path = args[0] if args else None
        where = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else None
        raise OSError(self.err, os.strerror(self.err), where)  # EACCES: a PermissionError

    def _wrap(self, name: str, real: Any, *, file_result: bool = False) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.hit(name, args, kwargs)
            result = real(*args, **kwargs)
            if file_result and self._thread == threading.get_ident():
                return _File(self, result)
            return result

        return wrapper

    def _targets(self) -> list[tuple[Any, str, bool]]:
        from edgeort.bundle import _place

        targets = [(os, name, name == "fdopen") for name in _OS_CALLS if hasattr(os, name)]
        targets += [(io, "open", True), (builtins, "open", True)]
        # copyfile/copy2 go through sendfile, disk_usage through statvfs: not wrapped below.
        # rmtree, copyfileobj, mkstemp and mkdtemp are not wrapped themselves: every file
        # call they make is (rmtree(ignore_errors=True) never raises, and must not here).
        targets += [(shutil, n, False) for n in ("copyfile", "copy2", "disk_usage")]
        targets += [(_place, "_exchange", False)]
        if fcntl is not None:
            targets.append((fcntl, "flock", False))
        return targets

    @contextlib.contextmanager
    def armed(self) -> Iterator[FaultFS]:
        saved = []
        for module, name, file_result in self._targets():
            real = getattr(module, name)
            saved.append((module, name, real))
            label = f"{getattr(module, '__name__', module)}.{name}".replace("builtins.", "")
            setattr(module, name, self._wrap(label, real, file_result=file_result))
        self._thread = threading.get_ident()
        try:
            yield self
        finally:
            self._thread = None
            for module, name, real in reversed(saved):
                setattr(module, name, real)


def count_calls(fn: Any) -> FaultFS:
    """Run ``fn()`` once under a counting FaultFS; return it (``.n``, ``.calls``)."""
    fs = FaultFS()
    with fs.armed():
        fn()
    return fs
