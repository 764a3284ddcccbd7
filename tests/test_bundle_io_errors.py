"""A failing disk is not tampering: read_bundle, verify_bundle, open_bundle and
sign_bundle report file-system errors as BundleError (CacheError, PackageError) naming
the file and the errno, never as IntegrityError and never as a bare OSError.

Faults come from :class:`tests.test_trust_support.FaultFS` (the k-th file-system call
raises a real ``OSError``), from a targeted ``os.open`` wrapper, and from a real EACCES:
a child process that is not root reading a mode-000 manifest.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeort.bundle import open_bundle, read_bundle, verify_bundle
from edgeort.bundle.signing import generate_keypair, sign_bundle
from edgeort.errors import BundleError, CacheError, IntegrityError, PackageError, SignatureError
from tests.test_bundle_support import sample_bundle
from tests.test_trust_support import FaultFS, count_calls

NOBODY = 65534


def _every_fault(
    op: Callable[[], Any], err: int, reset: Callable[[], Any] = lambda: None
) -> Iterator[tuple[int, BaseException | None]]:
    """Run ``op`` once per file-system call k, the k-th call failing with ``err``
    (``reset``, unfaulted, before each run)."""
    reset()
    n = count_calls(op).n
    assert n > 0
    for k in range(1, n + 1):
        reset()
        fs = FaultFS(fail_at=k, err=err)
        try:
            with fs.armed():
                op()
        except Exception as exc:  # judged by the caller
            yield k, exc
        else:
            yield k, None


def _named(exc: BaseException | None, err: int) -> bool:
    """The error names the errno (text and symbol) and keeps the OSError as its cause."""
    text = str(exc)
    return os.strerror(err) in text and errno.errorcode[err] in text


@pytest.mark.parametrize("err", [errno.EIO, errno.EACCES])
def test_read_bundle_faults_are_bundle_errors(tmp_path: Path, err: int) -> None:
    root = sample_bundle(tmp_path, external="weights.bin")
    outcomes = [exc for _k, exc in _every_fault(lambda: read_bundle(root), err)]
    failed = [exc for exc in outcomes if exc is not None]  # realpath() ignores lstat errors
    assert len(failed) >= 5
    for exc in failed:
        assert type(exc) is BundleError, repr(exc)
        assert _named(exc, err) and isinstance(exc.__cause__, OSError), exc


@pytest.mark.parametrize("use_cache", [False, True])
@pytest.mark.parametrize("err", [errno.EIO, errno.EACCES])
def test_verify_bundle_faults_are_bundle_errors(tmp_path: Path, err: int, use_cache: bool) -> None:
    root = sample_bundle(tmp_path, external="weights.bin")
    bundle = read_bundle(root)
    failed = 0
    for k, exc in _every_fault(lambda: verify_bundle(bundle, use_cache=use_cache), err):
        if exc is None:  # a fault in the verification cache only: it is optional
            continue
        failed += 1
        assert type(exc) is BundleError, f"call {k}: {exc!r}"
        assert _named(exc, err) and isinstance(exc.__cause__, OSError), exc
        assert str(bundle.root) in str(exc)
    assert failed > 0
    verify_bundle(bundle)  # the bundle itself was never wrong


def test_read_error_of_a_listed_file_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``os.read`` errors carry no file name; the error still names the file."""
    root = sample_bundle(tmp_path, external="weights.bin")
    bundle = read_bundle(root)
    real = os.read

    def failing_read(fd: int, n: int) -> bytes:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == "weights.bin":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(fd, n)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell which file an fd is")
    monkeypatch.setattr(os, "read", failing_read)
    with pytest.raises(BundleError) as info:
        verify_bundle(bundle, use_cache=False)
    assert type(info.value) is BundleError
    assert "model/cpu-fp32/weights.bin" in str(info.value) and "(EIO)" in str(info.value)


@pytest.fixture
def failing_open(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, int], None]:
    """``fail("manifest.json", errno.EIO)``: os.open of files with that name raises."""

    def fail(name: str, err: int) -> None:
        real = os.open

        def wrapped(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if os.path.basename(os.fsdecode(path)) == name:
                raise OSError(err, os.strerror(err), os.fsdecode(path))
            return real(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", wrapped)

    return fail


@pytest.mark.parametrize("err", [errno.EIO, errno.EACCES, errno.ENOMEM])
@pytest.mark.parametrize("name", ["manifest.json", "component.json"])
def test_open_error_of_the_json_is_not_tampering(
    tmp_path: Path, failing_open: Callable[[str, int], None], name: str, err: int
) -> None:
    root = sample_bundle(tmp_path)
    failing_open(name, err)
    for op in (lambda: read_bundle(root), lambda: open_bundle(root)):
        with pytest.raises(BundleError) as info:
            op()
        assert type(info.value) is BundleError  # not IntegrityError
        assert _named(info.value, err) and name in str(info.value)
        assert info.value.path is not None and info.value.path.endswith(name)


def test_unreadable_signature_is_not_a_signature_error(
    tmp_path: Path, failing_open: Callable[[str, int], None]
) -> None:
    private, public = generate_keypair()
    root = sign_bundle(sample_bundle(tmp_path), private, sequence=1)
    failing_open("signature.json", errno.EIO)
    with pytest.raises(BundleError) as info:
        open_bundle(root, trusted_keys=[public])
    assert type(info.value) is BundleError
    assert "signature.json" in str(info.value) and "(EIO)" in str(info.value)


def test_a_link_is_still_tampering(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    real = tmp_path / "real.json"
    shutil.move(root / "manifest.json", real)
    (root / "manifest.json").symlink_to(real)
    with pytest.raises(IntegrityError, match=r"manifest\.json: is a symbolic link"):
        read_bundle(root)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    (root / "manifest.json").unlink()
    os.mkfifo(root / "manifest.json")
    with pytest.raises(IntegrityError, match="not a regular file"):
        read_bundle(root)


@pytest.mark.parametrize("err", [errno.EIO, errno.EACCES])
def test_zip_faults_are_never_tampering(tmp_path: Path, err: int) -> None:
    """open_bundle(zip): a fault reading the zip is a BundleError, one writing or
    reading the cache a CacheError; the next open always works."""
    zip_path = sample_bundle(tmp_path, name="b.zip", zip=True, external="weights.bin")
    seen: set[str] = set()

    def empty_cache() -> None:
        shutil.rmtree(Path(os.environ["EDGEORT_CACHE_DIR"]), ignore_errors=True)

    def op() -> None:
        open_bundle(zip_path)

    for k, exc in _every_fault(op, err, empty_cache):
        if exc is None:
            continue
        seen.add(type(exc).__name__)
        assert type(exc) in (BundleError, CacheError), f"call {k}: {exc!r}"
        assert os.strerror(err) in str(exc)
    assert "CacheError" in seen
    op()


@pytest.mark.parametrize("zip", [False, True])
def test_sign_bundle_faults(tmp_path: Path, zip: bool) -> None:
    """Reading fails: BundleError/CacheError; writing fails: PackageError. The bundle is
    unsigned or completely signed afterwards, never anything else."""
    private, public = generate_keypair()
    path = sample_bundle(tmp_path, name="b.zip" if zip else "b.ortpackage", zip=zip)
    pristine = tmp_path / "pristine"
    if zip:
        shutil.copyfile(path, pristine)
    else:
        shutil.copytree(path, pristine)

    def reset() -> None:
        if zip:
            shutil.copyfile(pristine, path)
        else:
            (path / "signature.json").unlink(missing_ok=True)

    classes: set[str] = set()
    for k, exc in _every_fault(lambda: sign_bundle(path, private, sequence=5), errno.EIO, reset):
        if exc is None:
            open_bundle(path, trusted_keys=[public])
            continue
        classes.add(type(exc).__name__)
        assert type(exc) in (BundleError, CacheError, PackageError), f"call {k}: {exc!r}"
        assert "(EIO)" in str(exc)
        try:  # a failed fsync after the rename leaves it signed: both states are whole
            open_bundle(path, trusted_keys=[public])
        except SignatureError as err:
            assert "is not signed" in str(err)
    assert "PackageError" in classes


_CHILD = r"""
import json, os, sys
from edgeort.bundle import open_bundle, read_bundle
from edgeort.errors import EdgeortError
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(int(sys.argv[1]))
    os.setuid(int(sys.argv[1]))
out = {"uid": os.geteuid()}
for name, op in (("read", read_bundle), ("open", open_bundle)):
    try:
        op(sys.argv[2])
        out[name] = {"type": None}
    except EdgeortError as exc:
        out[name] = {"type": type(exc).__name__, "message": str(exc), "path": exc.path}
print(json.dumps(out))
"""


def test_real_eacces_as_another_user(tmp_path: Path) -> None:
    """A manifest the user may not read: the kernel's EACCES, in a child that is not
    root (root ignores mode bits), is a BundleError naming the file, not tampering."""
    shared = Path(tempfile.mkdtemp(prefix="edgeort-io-errors-"))
    try:
        root = sample_bundle(shared)
        for p in [shared, *shared.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        (root / "manifest.json").chmod(0o000)
        cmd = [sys.executable, "-c", _CHILD, str(NOBODY), str(root)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert out["uid"] != 0
    for name in ("read", "open"):
        got = out[name]
        assert got["type"] == "BundleError", got
        assert "manifest.json" in got["message"] and "Permission denied (EACCES)" in got["message"]
        assert got["path"].endswith("manifest.json")
