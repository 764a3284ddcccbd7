"""Zip transport: deterministic round trip, and hostile archives refused before writing."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from edgeort._dirs import cache_dir
from edgeort.bundle import _zip as zipmod
from edgeort.bundle import open_bundle
from edgeort.errors import BundleError, CacheError, IntegrityError
from tests.test_bundle_support import sample_bundle, tree

MODEL = "model/cpu-fp32/model.onnx"


@pytest.fixture(autouse=True)
def _no_ort(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ort(*args: object, **kwargs: object) -> None:
        raise AssertionError("ORT must not be called by the zip layer")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_ort)


def _members(tmp_path: Path) -> dict[str, bytes]:
    return tree(sample_bundle(tmp_path / "src"))


def _zip(path: Path, members: dict[str, bytes], **attrs: dict[str, object]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate names we want
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                info = zipfile.ZipInfo(name.split("\0dup")[0], date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                for key, value in attrs.get(name, {}).items():
                    setattr(info, key, value)
                zf.writestr(info, data)
    return path


def _patch_central(z: Path, name: str, offset: int, value: int, fmt: str = "<I") -> None:
    """Overwrite a field of ``name``'s central-directory record (offset from its start)."""
    data = bytearray(z.read_bytes())
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        n, m, k = struct.unpack("<HHH", data[pos + 28 : pos + 34])
        if data[pos + 46 : pos + 46 + n] == name.encode():
            data[pos + offset : pos + offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
        pos = data.find(b"PK\x01\x02", pos + 46 + n + m + k)
    z.write_bytes(bytes(data))


def _bundles_dir_entries() -> list[str]:
    d = cache_dir() / "bundles"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_round_trip_and_cache_reuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = sample_bundle(tmp_path, name="b.zip", zip=True)
    with zipfile.ZipFile(z) as zf:
        names = [i.filename for i in zf.infolist()]
        assert names == sorted(names) and "manifest.json" in names
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    b = open_bundle(z)
    assert (
        b.source == z
        and b.root == cache_dir() / "bundles" / hashlib.sha256(z.read_bytes()).hexdigest()
    )
    assert b.variants[0].name == "cpu-fp32"
    unpacked: list[Path] = []
    monkeypatch.setattr(zipmod, "_unpack", lambda *a: unpacked.append(a[0]) or {})
    assert open_bundle(z).root == b.root and unpacked == []


def test_zip_of_directory_with_top_level_folder(tmp_path: Path) -> None:
    members = _members(tmp_path)
    wrapped = {"b.ortpackage/": b"", "b.ortpackage/model/": b""}
    wrapped |= {f"b.ortpackage/{k}": v for k, v in members.items()}
    b = open_bundle(_zip(tmp_path / "w.zip", wrapped))
    assert (b.root / MODEL).read_bytes() == members[MODEL]


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../evil.txt", "unsafe name"),
        ("model/../../evil.txt", "unsafe name"),
        ("/tmp/evil.txt", "unsafe name"),
        ("C:/evil.txt", "unsafe name"),
        ("..\\evil.txt", "unsafe name"),
        ("model/CON", "unsafe name"),
        ("Manifest.json", "twin"),
        ("model", "both a file and a directory"),
        (MODEL + "\0dup", "appears twice"),
    ],
)
def test_hostile_names_refused_before_writing(tmp_path: Path, name: str, match: str) -> None:
    members = _members(tmp_path) | {name: b"evil"}
    z = _zip(tmp_path / "h.zip", members)
    before = tree(tmp_path)
    with pytest.raises(BundleError, match=match):
        open_bundle(z)
    assert tree(tmp_path) == before
    assert _bundles_dir_entries() == []


@pytest.mark.parametrize(
    ("attrs", "match"),
    [
        ({"external_attr": (stat.S_IFLNK | 0o777) << 16}, "symbolic link"),
        ({"external_attr": (stat.S_IFCHR | 0o644) << 16}, "not a regular file"),
        ({"compress_type": zipfile.ZIP_BZIP2}, "compression method 12"),
    ],
)
def test_hostile_member_types(tmp_path: Path, attrs: dict[str, object], match: str) -> None:
    z = _zip(tmp_path / "h.zip", _members(tmp_path), **{MODEL: attrs})
    with pytest.raises(BundleError, match=match):
        open_bundle(z)
    assert _bundles_dir_entries() == []


def test_encrypted_member(tmp_path: Path) -> None:
    z = _zip(tmp_path / "enc.zip", _members(tmp_path))
    _patch_central(z, MODEL, 8, 0x1, "<H")  # general purpose flag bit 0
    with pytest.raises(BundleError, match="encrypted"):
        open_bundle(z)


def test_ratio_bomb(tmp_path: Path) -> None:
    z = _zip(
        tmp_path / "bomb.zip", _members(tmp_path) | {"model/cpu-fp32/zeros.bin": bytes(8 << 20)}
    )
    with pytest.raises(BundleError, match="zip bomb"):
        open_bundle(z)


def test_overlapping_members_bomb(tmp_path: Path) -> None:
    members = _members(tmp_path) | {"model/cpu-fp32/twin.bin": b"y" * 100}
    z = _zip(tmp_path / "overlap.zip", members)
    with zipfile.ZipFile(z) as zf:
        target = zf.getinfo(MODEL).header_offset
    _patch_central(z, "model/cpu-fp32/twin.bin", 42, target)  # both point at one entry
    with pytest.raises(BundleError, match="overlaps"):
        open_bundle(z)


def test_member_count_and_total_size_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = _members(tmp_path)
    monkeypatch.setattr(zipmod, "MAX_MEMBERS", len(members) + 2)
    many = members | {f"model/cpu-fp32/t{i}": b"" for i in range(3)}
    with pytest.raises(BundleError, match="members, more than"):
        open_bundle(_zip(tmp_path / "many.zip", many))
    monkeypatch.setattr(zipmod, "MAX_TOTAL", 100)
    with pytest.raises(BundleError, match="uncompressed, more than 100"):
        open_bundle(_zip(tmp_path / "big.zip", members))


def test_member_contents_checked_against_manifest(tmp_path: Path) -> None:
    members = _members(tmp_path)
    extra = members | {"model/cpu-fp32/extra.bin": b"x"}
    with pytest.raises(IntegrityError, match=r"extra.bin' is not listed"):
        open_bundle(_zip(tmp_path / "extra.zip", extra))
    missing = {k: v for k, v in members.items() if k != MODEL}
    with pytest.raises(IntegrityError, match="is missing"):
        open_bundle(_zip(tmp_path / "missing.zip", missing))
    flipped = bytearray(members[MODEL])
    flipped[10] ^= 1
    with pytest.raises(IntegrityError, match="sha256 differs"):
        open_bundle(_zip(tmp_path / "flip.zip", members | {MODEL: bytes(flipped)}))
    with pytest.raises(IntegrityError, match="bytes, manifest says"):
        open_bundle(_zip(tmp_path / "longer.zip", members | {MODEL: members[MODEL] + b"\0"}))
    assert _bundles_dir_entries() == []


def test_corrupt_archive_bytes(tmp_path: Path) -> None:
    z = sample_bundle(tmp_path, name="b.zip", zip=True)
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo(MODEL)
    data[info.header_offset + 30 + len(MODEL) + 5] ^= 0xFF  # inside the compressed data
    z.write_bytes(bytes(data))
    with pytest.raises(BundleError):
        open_bundle(z)
    (tmp_path / "trunc.zip").write_bytes(b"PK\x03\x04" + b"\0" * 20)
    with pytest.raises(BundleError, match="not a readable zip"):
        open_bundle(tmp_path / "trunc.zip")


def test_unusable_cache_is_a_cache_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = sample_bundle(tmp_path, name="b.zip", zip=True)
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("EDGEORT_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(CacheError, match="cache directory"):
        open_bundle(z)


@pytest.mark.skipif(not hasattr(os, "chown") or os.geteuid() != 0, reason="needs root to chown")
def test_foreign_owned_bundles_dir_is_a_cache_error(tmp_path: Path) -> None:
    z = sample_bundle(tmp_path, name="b.zip", zip=True)
    bundles = cache_dir() / "bundles"
    bundles.mkdir(parents=True)
    os.chown(bundles, 65534, 65534)
    with pytest.raises(CacheError, match="owned by another user"):
        open_bundle(z)


def test_tampered_extraction_is_replaced(tmp_path: Path) -> None:
    z = sample_bundle(tmp_path, name="b.zip", zip=True, bias=np.full(4, 3, np.float32))
    b = open_bundle(z)
    good = (b.root / MODEL).read_bytes()
    (b.root / MODEL).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    again = open_bundle(z)
    assert (again.root / MODEL).read_bytes() == good
    assert [p for p in _bundles_dir_entries() if p.startswith(".edgeort-tmp")] == []


def test_writer_stores_highly_compressible_members(tmp_path: Path) -> None:
    from edgeort.bundle import write_bundle
    from tests.test_bundle_support import make_model, make_spec

    src = tmp_path / "src"
    make_model(src / "model.onnx")
    (src / "zeros.bin").write_bytes(bytes(2 << 20))
    z = write_bundle(tmp_path / "z.zip", [make_spec(src)], package_name="z", zip=True)
    with zipfile.ZipFile(z) as zf:
        assert zf.getinfo("model/cpu-fp32/zeros.bin").compress_type == zipfile.ZIP_STORED
        assert zf.getinfo(MODEL).compress_type == zipfile.ZIP_DEFLATED
    assert (open_bundle(z).root / "model/cpu-fp32/zeros.bin").stat().st_size == 2 << 20
