"""Tampering is detected before ORT sees a byte (issue "Run" integrity, "Trust" part 1).

Each attack goes through ``edgeort.load``, which hands the bundle to ORT once
``open_bundle`` has verified it, with ``onnxruntime.InferenceSession`` replaced by a spy.
So the spy's empty record means something: were the check skipped or done after the
session, the spy would see the session (the controls below show it does on a valid
bundle).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

import edgeort
from edgeort._dirs import cache_dir
from edgeort.bundle import _verify, open_bundle, verify_bundle
from edgeort.errors import BundleError, IntegrityError
from tests.test_bundle_support import forge, sample_bundle

MODEL = "model/cpu-fp32/model.onnx"


@pytest.fixture
def ort_calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Spy: records every InferenceSession creation (they must not happen on bad bundles)."""
    calls: list[object] = []
    real = onnxruntime.InferenceSession

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args[0] if args else kwargs.get("path_or_bytes"))
        return real(*args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    return calls


def _load_and_run(root: Path) -> np.ndarray:
    """What a device does: ``edgeort.load`` (verify, then an ORT session), then run."""
    return edgeort.load(root).run({"x": np.zeros((1, 4), np.float32)})["y"]


@pytest.mark.parametrize("external", [None, "weights.bin"])
def test_control_the_spy_sees_the_session_of_a_valid_bundle(
    tmp_path: Path, ort_calls: list[object], external: str | None
) -> None:
    """The bundles the attacks below start from reach ORT through the same path, so an
    empty spy record after an attack is the check working, not the spy missing calls."""
    root = sample_bundle(tmp_path, external=external)
    assert _load_and_run(root).tolist() == [[0, 1, 2, 3]]
    assert len(ort_calls) == 1 and str(ort_calls[0]).endswith(MODEL.rsplit("/", 1)[-1])


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _truncate(n: int) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(p.read_bytes()[: n if n >= 0 else len(p.read_bytes()) + n])


TAMPER = {
    "flip": (_flip, "sha256"),
    "truncate0": (_truncate(0), "size 0 bytes"),
    "truncate1": (_truncate(1), "size 1 bytes"),
    "truncate-1": (_truncate(-1), "size"),
    "append": (lambda p: p.write_bytes(p.read_bytes() + b"\0"), "size"),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
@pytest.mark.parametrize("target", [MODEL, "model/cpu-fp32/weights.bin"])
def test_byte_tampering(tmp_path: Path, ort_calls: list[object], case: str, target: str) -> None:
    root = sample_bundle(tmp_path, external="weights.bin")
    assert _load_and_run(root).tolist() == [[0, 1, 2, 3]]  # warm the verify cache too
    assert len(ort_calls) == 1  # the spy sees this bundle's session while it is valid
    ort_calls.clear()
    action, match = TAMPER[case]
    action(root / target)
    with pytest.raises(IntegrityError, match=match) as info:
        _load_and_run(root)
    assert target in str(info.value)
    assert ort_calls == []


def test_mtime_restored_after_edit_is_still_detected(
    tmp_path: Path, ort_calls: list[object]
) -> None:
    root = sample_bundle(tmp_path)
    open_bundle(root)
    st = os.stat(root / MODEL)
    _flip(root / MODEL)
    os.utime(root / MODEL, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(IntegrityError, match="sha256"):
        _load_and_run(root)
    assert ort_calls == []


def test_mix_and_match_between_bundles(tmp_path: Path, ort_calls: list[object]) -> None:
    a = sample_bundle(tmp_path / "a")
    b = sample_bundle(tmp_path / "b", bias=np.full(4, 5, np.float32))
    shutil.copyfile(b / MODEL, a / MODEL)
    with pytest.raises(IntegrityError, match=f"{MODEL}: sha256"):
        _load_and_run(a)
    assert ort_calls == []


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda r: (r / "model/cpu-fp32/extra.bin").write_bytes(b"x"), "extra.bin: not listed"),
        (lambda r: (r / "README").write_text("hi"), "README: not listed"),
        (lambda r: (r / "model/cpu-fp32/sub").mkdir(), "sub/: directory holds no listed file"),
        (lambda r: (r / MODEL).unlink(), "listed but missing"),
        (lambda r: (r / "model/component.json").unlink(), "component.json: missing"),
        (lambda r: os.mkfifo(r / "model/fifo"), "not a regular file"),
    ],
    ids=["extra-file", "extra-root-file", "extra-dir", "removed", "no-component", "fifo"],
)
def test_closed_world(
    tmp_path: Path, ort_calls: list[object], change: Callable[[Path], object], match: str
) -> None:
    root = sample_bundle(tmp_path)
    change(root)
    cls = BundleError if "component" in match else IntegrityError
    with pytest.raises(cls, match=match):
        _load_and_run(root)
    assert ort_calls == []


def test_symlinks_and_hardlinks(tmp_path: Path, ort_calls: list[object]) -> None:
    cases = {
        "inside": lambda r: _replace_with_link(r / MODEL, r / "model/cpu-fp32/copy.onnx"),
        "outside": lambda r: _replace_with_link(r / MODEL, tmp_path / "outside.onnx"),
        "variant-dir": lambda r: _replace_with_link(r / "model/cpu-fp32", tmp_path / "outdir"),
        "hardlink": lambda r: os.link(r / MODEL, tmp_path / f"hard-{r.name}"),
    }
    for name, change in cases.items():
        root = sample_bundle(tmp_path, name=f"{name}.ortpackage")
        change(root)
        with pytest.raises(IntegrityError, match=r"symbolic link|hard links"):
            _load_and_run(root)
    assert ort_calls == []


def _replace_with_link(path: Path, real: Path) -> None:
    shutil.move(path, real)
    path.symlink_to(real)


def _hostile_external(root: Path, **entries: str | None) -> None:
    model = onnx.load(root / MODEL, load_external_data=False)
    tensor = model.graph.initializer[0]
    kv = {e.key: e.value for e in tensor.external_data}
    kv.update(entries)
    del tensor.external_data[:]
    for k, v in kv.items():
        if v is not None:
            tensor.external_data.add(key=k, value=v)
    (root / MODEL).write_bytes(model.SerializeToString())
    forge(root)  # digests re-made: only the external-data check can catch it


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ({"location": "../secret.bin"}, "'..'"),
        ({"location": "/etc/hostname"}, "is absolute"),
        ({"location": "C:\\weights.bin"}, "drive letter"),
        ({"location": "other.bin"}, "'other.bin' is not listed"),
        ({"offset": "1000000"}, "past the end"),
        ({"length": "17"}, "past the end"),
        ({"offset": "-1"}, "not an integer >= 0"),
        ({"evil": "1"}, "unknown"),
        ({"location": None}, "location None is missing"),
    ],
)
def test_external_data_checked_by_edgeort(
    tmp_path: Path, ort_calls: list[object], entries: dict[str, str | None], match: str
) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    root = sample_bundle(tmp_path, external="weights.bin")
    _hostile_external(root, **entries)
    with pytest.raises(IntegrityError, match=match):
        _load_and_run(root)
    assert ort_calls == []


def test_malformed_model_protobuf(tmp_path: Path, ort_calls: list[object]) -> None:
    root = sample_bundle(tmp_path)
    (root / MODEL).write_bytes(b"\x3a\xff\xff\xff\xff\x0f")  # graph field claiming 4 GiB
    forge(root)
    with pytest.raises(IntegrityError, match="not a valid ONNX protobuf"):
        _load_and_run(root)
    assert ort_calls == []


def test_cache_skips_rehash_until_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = sample_bundle(tmp_path, external="weights.bin")
    hashed: list[str] = []
    real = _verify.hash_fd
    monkeypatch.setattr(
        _verify, "hash_fd", lambda fd, name, limit: hashed.append(name) or real(fd, name, limit)
    )
    b = open_bundle(root)
    assert sorted(hashed) == [MODEL, "model/cpu-fp32/weights.bin"]
    hashed.clear()
    verify_bundle(b)
    assert hashed == []
    verify_bundle(b, use_cache=False)
    assert len(hashed) == 2
    hashed.clear()
    os.utime(root / MODEL)  # a touch changes the stamp: re-hash that file only
    verify_bundle(b)
    assert hashed == [MODEL]


def test_unusable_cache_degrades_to_full_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = sample_bundle(tmp_path)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("EDGEORT_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING, "edgeort.bundle"):
        open_bundle(root)
    assert "verification cache disabled" in caplog.text
    _flip(root / MODEL)
    with pytest.raises(IntegrityError):
        open_bundle(root)


@pytest.mark.skipif(not hasattr(os, "chown") or os.geteuid() != 0, reason="needs root to chown")
def test_foreign_owned_cache_is_not_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = sample_bundle(tmp_path)
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, 65534, 65534)
    with caplog.at_level(logging.WARNING, "edgeort.bundle"):
        open_bundle(root)
    assert "owned by another user" in caplog.text
    assert not (directory / "verified.json").exists()


def test_corrupt_cache_file_is_ignored(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "verified.json").write_bytes(b'{"x": [1, 2')
    open_bundle(root)
    (directory / "verified.json").write_bytes(
        b'{"' + str(root.resolve() / MODEL).encode() + b'": {"refs": 3}}'
    )
    assert open_bundle(root).package_name == "demo"
