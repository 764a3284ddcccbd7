"""Hostile manifests and paths (issue "Trust" part 1): each one a named BundleError,
no file written, no ORT call."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime
import pytest

from edgeort.bundle import open_bundle
from edgeort.bundle._paths import path_problem
from edgeort.errors import BundleError, IntegrityError
from tests.test_bundle_support import forge, sample_bundle, tree

VALID = json.dumps({"a": 1}).encode()


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def no_ort(*args: object, **kwargs: object) -> None:
        raise AssertionError("ORT was called on a hostile bundle")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_ort)
    return sample_bundle(tmp_path)


def _rejects(root: Path, match: str, cls: type[BundleError] = BundleError) -> BundleError:
    before = tree(root.parent)
    with pytest.raises(cls, match=match) as info:
        open_bundle(root)
    assert tree(root.parent) == before  # nothing written beside or inside the bundle
    return info.value


def _deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "invalid JSON"),
        (b'{"schema_version": "1.0", "layout"', "invalid JSON"),
        (b'{"a": "\xff\xfe"}', "not UTF-8"),
        (b"\xef\xbb\xbf" + VALID, "byte-order mark"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"a": NaN}', "NaN is not allowed"),
        (b'{"a": Infinity}', "Infinity is not allowed"),
        (b'{"a": ' + b"9" * 5000 + b"}", "invalid JSON"),
        (_deep(100), "nested deeper than 64"),
        (_deep(100_000), "nested deeper than 64"),
        (b"[]", r"\$: expected an object"),
        (b" " * (16 * 1024 * 1024 + 1), "more than the 16777216 allowed"),
    ],
    ids=[
        "empty",
        "truncated",
        "utf8",
        "bom",
        "dupkey",
        "nan",
        "inf",
        "bigint",
        "deep100",
        "deep1e5",
        "list",
        "oversized",
    ],
)
def test_malformed_manifest_json(bundle: Path, raw: bytes, match: str) -> None:
    (bundle / "manifest.json").write_bytes(raw)
    err = _rejects(bundle, match)
    assert "manifest.json" in str(err)


def test_malformed_component_json_is_named(bundle: Path) -> None:
    forge(bundle, component=lambda c: b'{"variants": {"a": 1, "a": 2}}')
    err = _rejects(bundle, "duplicate key")
    assert "model/component.json" in str(err)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        *parents, last = path.split("/")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value

    return edit


ED = "additional_metadata/edgeort"
VAR = "variants/cpu-fp32"
VED = f"{VAR}/additional_metadata/edgeort"
FILE0 = f"{VED}/files/0"

MANIFEST_CASES = [
    ("schema_version", "2.0", "major version 2 is not supported"),
    ("schema_version", 1, r"\$.schema_version: expected a string like '1.0'"),
    ("schema_version", KeyError, "schema_version"),
    ("producer", {"name": "x"}, r"\$.producer: unknown key"),
    ("layout", "installed", r"\$.layout: expected 'portable'"),
    ("components", {"model": {"variants": {}}}, r"\$.components"),
    ("shared_assets", {"sha256:" + "0" * 64: "x"}, "shared assets"),
    ("package_name", 7, r"\$.package_name: expected a non-empty string"),
    (f"{ED}/format_version", "1", r"format_version: expected an integer"),
    (f"{ED}/format_version", 2, "newer edgeort"),
    (f"{ED}/format", "other", r"\$.additional_metadata.edgeort.format"),
    (f"{ED}/producer", KeyError, "producer: missing"),
    (f"{ED}/components_sha256/model", "ABC", "64 lowercase hex"),
]


@pytest.mark.parametrize(("key", "value", "match"), MANIFEST_CASES)
def test_bad_manifest_fields(bundle: Path, key: str, value: Any, match: str) -> None:
    forge(bundle, manifest=_set(key, value))
    _rejects(bundle, match)


def test_newer_minor_schema_tolerates_unknown_keys(bundle: Path) -> None:
    forge(bundle, manifest=lambda m: {**m, "schema_version": "1.7", "future": 1})
    assert open_bundle(bundle).package_name == "demo"


COMPONENT_CASES = [
    (f"{FILE0}/size", "100", r"files\[0\].size: expected an integer"),
    (f"{FILE0}/size", -1, r"files\[0\].size: expected an integer in \[0,"),
    (f"{FILE0}/size", 2**63, r"files\[0\].size"),
    (f"{FILE0}/size", True, r"files\[0\].size: expected an integer.*boolean"),
    (f"{FILE0}/sha256", "A" * 64, "64 lowercase hex"),
    (f"{FILE0}/sha256", "abc", "64 lowercase hex"),
    (f"{FILE0}/extra", 1, r"files\[0\].extra: unknown key"),
    (f"{VAR}/variant_directory", "../x", "variant_directory"),
    (f"{VAR}/ep", 3, r"\.ep: expected a non-empty string"),
    (f"{VAR}/device", "dsp", r"\.device: expected one of"),
    (f"{VAR}/priority", 1, r"\.priority: unknown key"),
    (f"{VAR}/executor_info/ort", KeyError, r"executor_info.ort: missing"),
    (f"{VAR}/executor_info/ort/model_file", "/abs/model.onnx", "is absolute"),
    (f"{VAR}/executor_info/ort/threads", "4", r"ort.threads: unknown key"),
    (f"{VAR}/executor_info/ort/provider_options", {"backend_path": "/tmp/evil.so"}, "absolute"),
    (f"{VAR}/executor_info/ort/session_options", {"x": 1}, r"session_options.x: expected a string"),
    (f"{VED}/inputs/0/shape", [-1, 4], r"shape\[0\]: expected an integer >= 0"),
    (f"{VED}/inputs/0/dtype", "Float32", "numpy dtype name"),
    (f"{VED}/ir_version", "9", r"ir_version: expected an integer"),
    (f"{VED}/opsets", {"": "17"}, r"opsets\[\"\"\]: expected an opset version"),
    (f"{VED}/min_ort", "newest", "min_ort: expected a version"),
    (f"{VED}/files", [], "at least one file"),
    (f"{VED}/accuracy", {"passed": "yes"}, r"accuracy.passed: expected a boolean"),
    (f"{VED}/accuracy", {"data": "made-up"}, r"accuracy.data"),
    (f"{VED}/gates", [{"gate": 1}], r"gates\[0\].gate"),
    ("variants", {}, "expected 1 to 256 variants"),
]


@pytest.mark.parametrize(("key", "value", "match"), COMPONENT_CASES)
def test_bad_component_fields(bundle: Path, key: str, value: Any, match: str) -> None:
    forge(bundle, component=_set(key, value), rehash=False)
    err = _rejects(bundle, match)
    assert "model/component.json" in str(err)


def test_every_problem_is_reported_at_once(bundle: Path) -> None:
    def edit(c: dict) -> None:
        _set(f"{VAR}/ep", 3)(c)
        _set(f"{FILE0}/size", "1")(c)
        _set(f"{VED}/min_ort", "x")(c)

    forge(bundle, component=edit, rehash=False)
    err = _rejects(bundle, "3 problems")
    for where in ('$.variants["cpu-fp32"].ep', "files[0].size", "edgeort.min_ort"):
        assert where in str(err)


NFD = unicodedata.normalize("NFD", "é.bin")
UNSAFE_PATHS = [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "C:x",
    "C:\\x",
    "\\\\server\\share",
    "a\\..\\x",
    "a\x00b",
    "a\nb",
    "a" * 256,
    "a/" * 2100 + "a",
    "CON",
    "nul.onnx",
    "com1.txt",
    "Lpt9",
    "x.",
    "x ",
    "./x",
    "a//b",
    "",
    "a:b",
    "a*b",
    "a|b",
]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_unsafe_paths_rejected_by_rule(path: str) -> None:
    assert path_problem(path) is not None


@pytest.mark.parametrize("path", ["model.onnx", "weights/w.bin", "é.bin", "a-b_c.1.data", "CONFIG"])
def test_safe_paths_accepted(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize("path", UNSAFE_PATHS[:12])
def test_unsafe_file_path_in_bundle(bundle: Path, path: str) -> None:
    forge(bundle, component=_set(f"{FILE0}/path", path), rehash=False)
    _rejects(bundle, r"files\[0\].path", IntegrityError)


@pytest.mark.parametrize(
    "pair", [("Model.onnx", "model.onnx"), ("é.bin", NFD), ("w/a.bin", "W/b.bin"), ("d", "d/x")]
)
def test_twins_rejected(bundle: Path, pair: tuple[str, str]) -> None:
    def edit(c: dict) -> None:
        files = c["variants"]["cpu-fp32"]["additional_metadata"]["edgeort"]["files"]
        files.extend({"path": p, "size": 0, "sha256": "0" * 64} for p in pair)

    forge(bundle, component=edit, rehash=False)
    _rejects(bundle, "twin|both a file and a directory", IntegrityError)


def test_component_from_another_bundle_is_detected(tmp_path: Path, bundle: Path) -> None:
    other = sample_bundle(tmp_path / "o", version="9")
    forge(other, component=_set(f"{VED}/profile", "other-profile"))
    (bundle / "model/component.json").write_bytes((other / "model/component.json").read_bytes())
    _rejects(bundle, "differs from manifest.json", IntegrityError)


def test_manifest_is_a_symlink(tmp_path: Path, bundle: Path) -> None:
    real = tmp_path / "elsewhere.json"
    real.write_bytes((bundle / "manifest.json").read_bytes())
    (bundle / "manifest.json").unlink()
    (bundle / "manifest.json").symlink_to(real)
    _rejects(bundle, "manifest.json", IntegrityError)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle at"):
        open_bundle(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(BundleError, match="neither a bundle directory nor a zip"):
        open_bundle(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        open_bundle(tmp_path / "empty")
