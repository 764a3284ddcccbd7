"""Bundle format: what write_bundle writes, what open_bundle reads back (docs/bundle-format.md)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edgeort.bundle import Bundle, FileEntry, TensorSpec, Variant, open_bundle, write_bundle
from edgeort.errors import BundleError, UsageError
from tests.test_bundle_support import make_model, make_spec, qnn_spec, sample_bundle

ORT_MANIFEST_KEYS = {
    "schema_version",
    "package_name",
    "package_version",
    "description",
    "layout",
    "components",
    "shared_assets",
    "additional_metadata",
}
ORT_VARIANT_KEYS = {
    "variant_directory",
    "ep",
    "device",
    "compatibility_string",
    "executor_info",
    "additional_metadata",
}


def test_round_trip_fields(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    b = open_bundle(root)
    assert isinstance(b, Bundle)
    assert (b.package_name, b.package_version, b.source, b.root) == (
        "demo",
        "1",
        root,
        root.resolve(),
    )
    (v,) = b.variants
    assert isinstance(v, Variant)
    assert (v.name, v.ep, v.device, v.directory, v.model_file) == (
        "cpu-fp32",
        "CPUExecutionProvider",
        "cpu",
        "cpu-fp32",
        "model.onnx",
    )
    assert dict(v.session_options) == {"session.intra_op.allow_spinning": "0"}
    assert v.inputs == (TensorSpec("x", "float32", ("N", 4)),)
    assert v.outputs == (TensorSpec("y", "float32", ("N", 4)),)
    assert (v.ir_version, dict(v.opsets), v.min_ort, v.ep_package) == (
        9,
        {"": 17},
        "1.17",
        "onnxruntime",
    )
    assert v.metadata["accuracy"]["passed"] is True and v.metadata["latency"] is None
    data = (root / "model" / "cpu-fp32" / "model.onnx").read_bytes()
    assert v.files == (FileEntry("model.onnx", len(data), hashlib.sha256(data).hexdigest()),)
    assert b.variant("cpu-fp32") is v
    assert b.model_path(v) == b.root / "model" / "cpu-fp32" / "model.onnx"
    assert b.metadata["format"] == "edgeort.bundle" and b.metadata["format_version"] == 1


def test_json_is_canonical_and_ort_shaped(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    for name in ("manifest.json", "model/component.json"):
        raw = (root / name).read_bytes()
        value = json.loads(raw)
        assert (
            raw == (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
        )
    manifest = json.loads((root / "manifest.json").read_bytes())
    assert set(manifest) <= ORT_MANIFEST_KEYS
    assert manifest["schema_version"] == "1.0" and manifest["layout"] == "portable"
    assert manifest["components"] == {"model": "model"}
    ed = manifest["additional_metadata"]["edgeort"]
    assert ed["producer"]["name"] == "edgeort"
    comp_bytes = (root / "model/component.json").read_bytes()
    assert ed["components_sha256"] == {"model": hashlib.sha256(comp_bytes).hexdigest()}
    comp = json.loads(comp_bytes)
    assert set(comp) == {"variants"}
    for body in comp["variants"].values():
        assert set(body) <= ORT_VARIANT_KEYS
        assert set(body["executor_info"]["ort"]) <= {
            "model_file",
            "provider_options",
            "session_options",
        }


def test_writing_is_deterministic(tmp_path: Path) -> None:
    a = sample_bundle(tmp_path / "a")
    b = sample_bundle(tmp_path / "b")
    for name in ("manifest.json", "model/component.json", "model/cpu-fp32/model.onnx"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    za = sample_bundle(tmp_path / "a", name="b.zip", zip=True)
    zb = sample_bundle(tmp_path / "b", name="b.zip", zip=True)
    assert za.read_bytes() == zb.read_bytes()


def test_qnn_variant_omits_device_and_keeps_provider_options(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_model(src / "model.onnx")
    qnn = qnn_spec(src)
    root = write_bundle(tmp_path / "q.ortpackage", [qnn, make_spec(src)], package_name="q")
    comp = json.loads((root / "model/component.json").read_bytes())
    assert "device" not in comp["variants"]["qnn-htp"]
    assert comp["variants"]["qnn-htp"]["executor_info"]["ort"]["provider_options"] == {
        "backend_type": "htp"
    }
    b = open_bundle(root)
    assert [v.name for v in b.variants] == ["qnn-htp", "cpu-fp32"]  # declaration order kept
    assert (
        b.variant("qnn-htp").device == "" and b.variant("qnn-htp").ep_package == "onnxruntime-qnn"
    )


def test_external_data_variant_round_trips(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path, external="weights.bin")
    (v,) = open_bundle(root).variants
    assert sorted(f.path for f in v.files) == ["model.onnx", "weights.bin"]


def test_extra_metadata_is_kept_and_numpy_scalars_become_json(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_model(src / "model.onnx")
    spec = make_spec(
        src,
        metadata={
            "accuracy": {"value": np.float32(0.25), "passed": np.bool_(True)},
            "vendor": {"note": "kept", "n": [1, 2]},
        },
    )
    root = write_bundle(tmp_path / "m.ortpackage", [spec], package_name="m", metadata={"team": "x"})
    b = open_bundle(root)
    assert b.variants[0].metadata["vendor"] == {"note": "kept", "n": [1, 2]}
    assert b.variants[0].metadata["accuracy"] == {"value": 0.25, "passed": True}
    assert b.metadata["team"] == "x"


def test_symlinked_root_is_followed_once(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    current = tmp_path / "current"
    current.symlink_to(root)
    b = open_bundle(current)
    assert (b.source, b.root) == (current, root.resolve())


def test_unknown_variant_name_is_a_usage_error(tmp_path: Path) -> None:
    b = open_bundle(sample_bundle(tmp_path))
    with pytest.raises(UsageError, match=r"no variant 'gpu'.*cpu-fp32"):
        b.variant("gpu")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"metadata": {"files": []}}, "may not set \\['files'\\]"),
        ({"device": "dsp"}, "device"),
        ({"name": "../evil"}, "variant name"),
        ({"model_file": "missing.onnx"}, "not listed"),
        ({"provider_options": {"backend_path": "/tmp/evil.so"}}, "backend_path"),
        ({"session_options": {"ep.context_file_path": "../x.onnx"}}, "'..'"),
        ({"min_ort": "latest"}, "min_ort"),
        ({"inputs": [TensorSpec("x", "Float 32", (1,))]}, "dtype"),
        ({"metadata": {"accuracy": {"value": float("nan")}}}, "JSON"),
        ({"metadata": {"blob": object()}}, "JSON"),
    ],
)
def test_bad_specs_are_usage_errors(tmp_path: Path, overrides: dict, match: str) -> None:
    src = tmp_path / "src"
    make_model(src / "model.onnx")
    with pytest.raises(UsageError, match=match):
        write_bundle(tmp_path / "x.ortpackage", [make_spec(src, **overrides)], package_name="x")
    assert not (tmp_path / "x.ortpackage").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]  # no staging left behind


def test_duplicate_names_and_reserved_manifest_keys(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_model(src / "model.onnx")
    with pytest.raises(UsageError, match="repeat"):
        write_bundle(tmp_path / "x", [make_spec(src, "a"), make_spec(src, "A")], package_name="x")
    with pytest.raises(UsageError, match="format"):
        write_bundle(
            tmp_path / "x", [make_spec(src)], package_name="x", metadata={"format": "other"}
        )
    with pytest.raises(UsageError, match="at least one"):
        write_bundle(tmp_path / "x", [], package_name="x")


def test_source_dir_with_symlink_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_model(src / "model.onnx")
    (src / "link").symlink_to("/etc/hostname")
    with pytest.raises(UsageError, match="link"):
        write_bundle(tmp_path / "x", [make_spec(src)], package_name="x")


def test_reader_rejects_newer_format_version(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    manifest = json.loads((root / "manifest.json").read_bytes())
    manifest["additional_metadata"]["edgeort"]["format_version"] = 2
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="newer edgeort"):
        open_bundle(root)


def test_relative_output_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = sample_bundle(Path("rel"), external="w.bin")
    assert root == Path("rel/b.ortpackage")
    assert open_bundle(root).root == (tmp_path / "rel/b.ortpackage").resolve()
