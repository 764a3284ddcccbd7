"""Atomic writing: replacing a bundle never leaves a mix, failures leave the old one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from edgeort.bundle import _place, _write, open_bundle, write_bundle
from edgeort.errors import BundleError, PackageError
from tests.test_bundle_support import make_model, make_spec, sample_bundle, tree


def _bias(b: Path) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    bundle = open_bundle(b)
    model = onnx.load(bundle.model_path(bundle.variants[0]))
    return numpy_helper.to_array(model.graph.initializer[0])


def _write_v2(tmp_path: Path, target: Path) -> Path:
    src = tmp_path / "src2"
    make_model(src / "model.onnx", bias=np.full(4, 7, np.float32))
    return write_bundle(target, [make_spec(src)], package_name="demo", package_version="2")


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".edgeort-tmp-"))


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_replace_existing_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    old = sample_bundle(tmp_path)
    if not exchange:
        monkeypatch.setattr(_place, "_exchange", lambda a, b: False)
    _write_v2(tmp_path, old)
    assert open_bundle(old).package_version == "2"
    assert _bias(old).tolist() == [7, 7, 7, 7]
    assert _leftovers(tmp_path) == []


def test_renameat2_really_swaps(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not _place._exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not supported on this file system/OS")
    assert ((a / "x").read_text(), (b / "x").read_text()) == ("b", "a")


@pytest.mark.parametrize("fail_at", ["copy", "stage-check", "place"])
def test_failure_keeps_old_bundle_and_cleans_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    old = sample_bundle(tmp_path)
    before = tree(old)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device (injected)")

    target = {
        "copy": (_write, "_copy_variant"),
        "stage-check": (_write, "_publish_modes"),
        "place": (_write, "place_dir"),
    }[fail_at]
    monkeypatch.setattr(*target, boom)
    with pytest.raises(PackageError, match="injected"):
        _write_v2(tmp_path, old)
    assert tree(old) == before
    assert open_bundle(old).package_version == "1"
    assert _leftovers(tmp_path) == []


def test_rename_aside_failure_restores_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = sample_bundle(tmp_path)
    before = tree(old)
    monkeypatch.setattr(_place, "_exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def rename(src: object, dst: object) -> None:
        calls.append((src, dst))
        if len(calls) == 2:  # the move of the new bundle into place
            raise OSError(5, "I/O error (injected)")
        real_rename(src, dst)

    monkeypatch.setattr(_place.os, "rename", rename)
    with pytest.raises(PackageError, match="injected"):
        _write_v2(tmp_path, old)
    monkeypatch.undo()
    assert tree(old) == before
    assert _leftovers(tmp_path) == []


def test_refuses_to_replace_non_bundle_directory(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a bundle"):
        _write_v2(tmp_path, precious)
    assert (precious / "notes.txt").read_text() == "keep me"
    assert _leftovers(tmp_path) == []


def test_stale_leftovers_are_removed_by_next_writer_fresh_ones_kept(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".edgeort-tmp-stale", tmp_path / ".edgeort-tmp-fresh"
    for d in (stale, fresh):
        d.mkdir()
        (d / "junk").write_bytes(b"x" * 10)
    old = time.time() - 2 * _place.STALE_S
    os.utime(stale, (old, old))
    sample_bundle(tmp_path)
    assert _leftovers(tmp_path) == [".edgeort-tmp-fresh"]


def test_locked_leftover_is_not_removed(tmp_path: Path) -> None:
    busy = tmp_path / ".edgeort-tmp-busy"
    busy.mkdir()
    old = time.time() - 2 * _place.STALE_S
    os.utime(busy, (old, old))
    with _place.locked(busy):
        if _place.fcntl is None:
            pytest.skip("no advisory locks on this platform")
        assert _place.clean_leftovers(tmp_path) == 0
    assert _place.clean_leftovers(tmp_path) == 1


def test_zip_target_replaced_atomically_and_dir_target_refused(tmp_path: Path) -> None:
    z = sample_bundle(tmp_path, name="b.zip", zip=True)
    first = z.read_bytes()
    sample_bundle(tmp_path, name="b.zip", zip=True, version="2")
    assert z.read_bytes() != first and open_bundle(z).package_version == "2"
    d = sample_bundle(tmp_path, name="d.zip")  # a directory named like a zip
    with pytest.raises(BundleError, match="is a directory"):
        sample_bundle(tmp_path, name="d.zip", zip=True)
    assert open_bundle(d).package_version == "1"
    assert _leftovers(tmp_path) == []


def test_readers_ignore_leftovers_beside_bundle(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    (tmp_path / ".edgeort-tmp-crashed").mkdir()
    assert open_bundle(root).package_name == "demo"
