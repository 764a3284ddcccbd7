"""The manifest's self-digest (docs/bundle-format.md section 3): any change to the bytes
of manifest.json, also one that leaves valid JSON, is an IntegrityError naming it.
It is not authentication: a re-sealed edit passes (only a signature catches that)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import onnxruntime
import pytest

from edgeort.bundle import open_bundle, read_bundle, write_bundle
from edgeort.bundle._seal import ZEROS, seal_manifest, self_digest
from edgeort.bundle._zip import write_zip
from edgeort.errors import BundleError, IntegrityError, UsageError
from tests.test_bundle_support import forge, make_model, make_spec, reseal, sample_bundle

MANIFEST = "manifest.json"


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def no_ort(*args: object, **kwargs: object) -> None:
        raise AssertionError("ORT was called on an altered bundle")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_ort)
    src = tmp_path / "src"
    make_model(src / "model.onnx")
    meta = {"family": "default"}
    return write_bundle(
        tmp_path / "b.ortpackage", [make_spec(src)], package_name="demo", metadata=meta
    )


def _recorded(raw: bytes) -> str:
    return str(json.loads(raw)["additional_metadata"]["edgeort"]["self_sha256"])


def _refused(root: Path, cls: type[BundleError] = IntegrityError) -> BundleError:
    with pytest.raises(cls) as info:
        open_bundle(root)
    assert MANIFEST in str(info.value)
    return info.value


def test_written_value_is_the_sha256_of_the_zeroed_file(bundle: Path) -> None:
    raw = (bundle / MANIFEST).read_bytes()
    value = _recorded(raw)
    assert raw.count(value.encode()) == 1  # computed here independently of _seal.py
    assert hashlib.sha256(raw.replace(value.encode(), ZEROS.encode())).hexdigest() == value
    assert open_bundle(bundle).metadata["self_sha256"] == value
    assert self_digest(raw, value) == value
    assert seal_manifest(raw.replace(value.encode(), ZEROS.encode())) == raw


# The four one-byte flips the trust soak found undetected before the self-digest
# (benchmarks/results/soak.md), plus one in the digest itself.
FLIPS = {
    "package-name": (b'"package_name": "demo"', b'"package_name": "dem\'"'),
    "producer-name": (b'"name": "edgeort"', b'"name": "eigeort"'),
    "metadata-value": (b'"family": "default"', b'"family": "d}fault"'),
    "metadata-key": (b'"family": "default"', b'"famili": "default"'),
    "digest-itself": (b"", b""),
}


@pytest.mark.parametrize("case", sorted(FLIPS))
def test_flip_that_keeps_a_valid_manifest_is_refused(bundle: Path, case: str) -> None:
    raw = (bundle / MANIFEST).read_bytes()
    old, new = FLIPS[case]
    if case == "digest-itself":
        old = _recorded(raw).encode()
        new = (b"1" if old[:1] == b"0" else b"0") + old[1:]
    assert raw.count(old) == 1 and len(old) == len(new)
    (bundle / MANIFEST).write_bytes(raw.replace(old, new))
    err = _refused(bundle)  # valid JSON and a valid manifest: only the self-digest tells
    assert "altered" in str(err)


def test_every_letter_flip_is_refused(bundle: Path) -> None:
    """Each letter or digit of the manifest, changed to another one, is refused. Where
    the refusal is not an IntegrityError, the manifest is invalid even re-sealed (a
    key or value the parser refuses): every change that leaves a valid manifest is
    caught by the self-digest."""
    raw = (bundle / MANIFEST).read_bytes()
    tried = integrity = 0
    for i, byte in enumerate(raw):
        if not chr(byte).isalnum():
            continue
        altered = raw[:i] + bytes([ord("1") if chr(byte).isalpha() else ord("a")]) + raw[i + 1 :]
        (bundle / MANIFEST).write_bytes(altered)
        with pytest.raises(BundleError) as info:
            read_bundle(bundle)
        assert MANIFEST in str(info.value)
        tried += 1
        if isinstance(info.value, IntegrityError):
            integrity += 1
            continue
        (bundle / MANIFEST).write_bytes(reseal(altered))
        with pytest.raises(BundleError):
            read_bundle(bundle)
    assert tried > 300 and integrity > 100


@pytest.mark.parametrize(
    "edit",
    [
        lambda raw: raw[:-1],  # the final newline: still the same JSON value
        lambda raw: raw + b" ",
        lambda raw: raw + b"\n\n",
        lambda raw: b" " + raw,
        lambda raw: json.dumps(json.loads(raw)).encode(),  # same values, other layout
        lambda raw: raw.replace(b'"layout": "portable"', b'"layout":  "portable"'),
    ],
    ids=["truncate-newline", "append-space", "append-newlines", "prepend", "compact", "space"],
)
def test_whitespace_and_layout_changes_are_refused(
    bundle: Path, edit: Callable[[bytes], bytes]
) -> None:
    raw = (bundle / MANIFEST).read_bytes()
    altered = edit(raw)
    assert json.loads(altered) == json.loads(raw)
    (bundle / MANIFEST).write_bytes(altered)
    err = _refused(bundle)
    assert "altered" in str(err) and err.path == str(bundle.resolve() / MANIFEST)


def test_missing_field_is_refused_by_name(bundle: Path) -> None:
    def edit(m: dict) -> None:
        del m["additional_metadata"]["edgeort"]["self_sha256"]

    forge(bundle, manifest=edit)
    err = _refused(bundle, BundleError)
    assert "$.additional_metadata.edgeort.self_sha256: missing" in str(err)
    assert "packaged again" in str(err)


@pytest.mark.parametrize("value", ["ABC", "0" * 63, 7, None])
def test_malformed_field_is_refused(bundle: Path, value: object) -> None:
    def edit(m: dict) -> None:
        m["additional_metadata"]["edgeort"]["self_sha256"] = value

    forge(bundle, manifest=edit)
    err = _refused(bundle, BundleError)
    assert "self_sha256" in str(err)


def test_second_field_elsewhere_is_refused(bundle: Path) -> None:
    """A second ``"self_sha256": "<hex>"`` (here in other metadata) makes the field
    ambiguous: refused, even though the first one is re-sealed correctly."""
    raw = (bundle / MANIFEST).read_bytes()
    doc = json.loads(raw)
    doc["additional_metadata"]["vendor"] = {"self_sha256": _recorded(raw)}
    (bundle / MANIFEST).write_bytes(json.dumps(doc, indent=2).encode())
    err = _refused(bundle)
    assert "found 2 times" in str(err)
    with pytest.raises(BundleError, match="exactly one"):
        seal_manifest((bundle / MANIFEST).read_bytes())


def test_resealed_edit_is_accepted_without_a_signature(bundle: Path) -> None:
    """Honest limit: anyone can recompute the self-digest (signing covers that case,
    tests/test_signing.py::test_forged_manifest_is_caught_by_signature)."""
    raw = (bundle / MANIFEST).read_bytes()
    (bundle / MANIFEST).write_bytes(reseal(raw.replace(b'"demo"', b'"evil"')))
    assert open_bundle(bundle).package_name == "evil"


def test_writer_refuses_metadata_that_would_break_the_seal(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_model(src / "model.onnx")
    with pytest.raises(UsageError, match="self_sha256"):
        write_bundle(
            tmp_path / "a", [make_spec(src)], package_name="x", metadata={"self_sha256": "x"}
        )
    with pytest.raises(UsageError, match="self_sha256"):
        write_bundle(
            tmp_path / "b",
            [make_spec(src)],
            package_name="x",
            metadata={"vendor": {"self_sha256": "a" * 64}},
        )
    # the same key with any other value is plain metadata
    root = write_bundle(
        tmp_path / "c", [make_spec(src)], package_name="x", metadata={"vendor": {"self_sha256": 1}}
    )
    assert open_bundle(root).metadata["vendor"] == {"self_sha256": 1}


def test_altered_manifest_inside_a_zip_is_refused(tmp_path: Path) -> None:
    """A zip rebuilt around an altered manifest (valid CRCs) is refused at extraction."""
    root = sample_bundle(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    raw = (copy / MANIFEST).read_bytes()
    (copy / MANIFEST).write_bytes(raw.replace(b'"demo"', b'"dem0"'))
    write_zip(copy, tmp_path / "bad.zip")
    with pytest.raises(IntegrityError, match=r"manifest\.json: sha256"):
        open_bundle(tmp_path / "bad.zip")
