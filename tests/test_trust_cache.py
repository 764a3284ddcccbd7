"""A read-only or foreign-owned cache directory gives a clear CacheError.

The suite runs as root here, and root ignores mode bits: a 0o500 directory is writable
for root. So the permission cases run in a child process that drops to uid/gid 65534
(``nobody``) after importing edgeort (the interpreter lives under /root, which nobody
cannot read, so every module the child needs, lazily imported ones included, is imported
before it drops), against directories in a world-readable temp dir. When the suite runs as
a normal user, the same child runs without dropping. Cases root cannot bypass (a cache
whose parent is a regular file) run in-process.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgeort.bundle import open_bundle, write_bundle
from edgeort.errors import CacheError
from tests.fresh import NOBODY, last_json, shared_tmp_dir
from tests.test_trust_support import add_spec, source_dir, write_version

_CHILD = r"""
import json, logging, os, sys
import numpy as np
import edgeort
from edgeort.bundle import open_bundle
from edgeort.errors import EdgeortError

warnings = []
logging.getLogger("edgeort").addHandler(type("H", (logging.Handler,), {
    "emit": lambda self, record: warnings.append(record.getMessage())})())
logging.getLogger("edgeort").setLevel(logging.WARNING)
device = __import__("edgeort.hardware", fromlist=["probe"]).probe(register_plugins=False)
cache, zip_path, dir_path, warm = sys.argv[2:6]
os.environ["EDGEORT_CACHE_DIR"] = warm  # a first load as root imports every lazy module
edgeort.load(dir_path, device=device).run({"x": np.ones((1, 4), np.float32)})
open_bundle(zip_path)  # ... and the zip reader's (imported only for a zip bundle)
warnings.clear()
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(int(sys.argv[1]))
    os.setuid(int(sys.argv[1]))
os.environ["EDGEORT_CACHE_DIR"] = cache
out = {"uid": os.geteuid()}
try:
    open_bundle(zip_path)
    out["zip"] = {"ok": True}
except EdgeortError as exc:
    out["zip"] = {"type": type(exc).__name__, "message": str(exc), "path": exc.path}
model = edgeort.load(dir_path, device=device)
y = model.run({"x": np.ones((2, 4), np.float32)})["y"]
out["dir"] = {"y": y.tolist(), "warnings": warnings}
out["cache_files"] = sorted(
    os.path.relpath(os.path.join(d, f), cache) for d, _, fs in os.walk(cache) for f in fs)
print(json.dumps(out))
"""


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    with shared_tmp_dir("edgeort-trust-cache-") as path:
        yield path


def _bundles(tmp: Path) -> tuple[Path, Path]:
    zip_path = write_version(tmp, tmp / "b.zip", "1", zip=True)
    dir_path = write_version(tmp, tmp / "d", "1")
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return zip_path, dir_path


def _child(cache: Path, zip_path: Path, dir_path: Path) -> dict[str, object]:
    warm = cache.parent / "warm-cache"
    cmd = ["-c", _CHILD, str(NOBODY), str(cache), str(zip_path), str(dir_path)]
    cmd.append(str(warm))
    env = {**os.environ, "EDGEORT_CONFIG_DIR": str(cache.parent / "config")}
    return last_json(cmd, env=env, cwd=None)


def _expected_y() -> list[list[float]]:
    return (np.ones((2, 4), np.float32) + np.arange(4, dtype=np.float32) + 1.0).tolist()


def test_read_only_cache_dir_is_a_clear_cache_error(shared_tmp: Path) -> None:
    zip_path, dir_path = _bundles(shared_tmp)
    cache = shared_tmp / "cache"
    cache.mkdir(mode=0o500)
    if os.geteuid() == 0:
        os.chown(cache, NOBODY, NOBODY)
    cache.chmod(0o500)  # r-x for its owner: readable, not writable
    out = _child(cache, zip_path, dir_path)
    assert out["uid"] != 0
    err = out["zip"]
    assert err["type"] == "CacheError", err
    assert str(cache / "bundles") in err["message"] and "Permission denied" in err["message"]
    assert err["path"] == str(cache / "bundles")
    # a bundle directory needs no cache: it loads and runs, verification cache off
    assert out["dir"]["y"] == _expected_y()
    assert any("verification cache" in w and str(cache) in w for w in out["dir"]["warnings"])
    assert out["cache_files"] == []


def test_foreign_owned_cache_dir_is_a_clear_cache_error(shared_tmp: Path) -> None:
    """A cache someone else owns is refused even when it is writable (they could swap
    the extracted files under us)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory another user owns")
    zip_path, dir_path = _bundles(shared_tmp)
    cache = shared_tmp / "cache"
    (cache / "bundles").mkdir(parents=True)
    for path in (cache, cache / "bundles"):
        path.chmod(0o777)  # world-writable, owned by root
    out = _child(cache, zip_path, dir_path)
    err = out["zip"]
    assert err["type"] == "CacheError", err
    assert f"{cache / 'bundles'} is owned by another user (uid 0)" in err["message"]
    assert out["dir"]["y"] == _expected_y()
    assert any("owned by another user" in w for w in out["dir"]["warnings"])
    assert list((cache / "bundles").iterdir()) == []  # nothing extracted there


def test_root_ignores_mode_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What root can bypass, stated as a test: as root a 0o500 cache is still used (the
    mode-bit cases above therefore run as uid 65534); as another user it is refused."""
    zip_path = write_version(tmp_path, tmp_path / "b.zip", "1", zip=True)
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    cache.chmod(0o500)
    monkeypatch.setenv("EDGEORT_CACHE_DIR", str(cache))
    try:
        if os.geteuid() == 0:
            assert open_bundle(zip_path).root.parent == cache / "bundles"
        else:
            with pytest.raises(CacheError, match="bundles"):
                open_bundle(zip_path)
    finally:
        cache.chmod(0o700)


def test_ep_cache_placeholder_under_a_file_is_a_cache_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``{cache_dir}`` in a variant's options needs the cache: a clear CacheError."""
    import edgeort
    from edgeort.hardware import probe

    src = source_dir(tmp_path, "1")
    spec = add_spec(src)
    options = {**spec.session_options, "ep.context_file_path": "{cache_dir}/ctx.onnx"}
    spec = dataclasses.replace(spec, session_options=options)
    bundle = write_bundle(tmp_path / "b", [spec], package_name="demo")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("EDGEORT_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(CacheError) as info:
        edgeort.load(bundle, device=probe(register_plugins=False))
    assert str(blocker / "cache" / "ep") in str(info.value)
