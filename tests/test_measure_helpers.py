"""Helpers for the measure tests: small bundles from tests.models builders (few tests here)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import onnx
import pytest

from edgeort.bundle import TensorSpec, VariantSpec, open_bundle, write_bundle
from edgeort.measure.targets import ep_unavailable_reason

QNN = "QNNExecutionProvider"
_DTYPES = {1: "float32", 7: "int64", 10: "float16", 6: "int32"}


def _specs(values: Any) -> list[TensorSpec]:
    out = []
    for v in values:
        t = v.type.tensor_type
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        )
        out.append(TensorSpec(v.name, _DTYPES[t.elem_type], dims))
    return out


def variant_spec(
    model: Path, name: str, ep: str = "CPUExecutionProvider", **extra: Any
) -> VariantSpec:
    """A VariantSpec for one model file (copied into its own source folder)."""
    # never beside the model: it may be examples/digits/model.onnx in the checkout
    src = Path(tempfile.mkdtemp(prefix=f"edgeort-src-{name}-"))
    shutil.copy(model, src / "model.onnx")
    proto = onnx.load(str(model), load_external_data=False)
    fields: dict[str, Any] = {
        "name": name,
        "ep": ep,
        "device": "" if ep == QNN else "cpu",
        "source_dir": src,
        "model_file": "model.onnx",
        "provider_options": {"backend_type": "htp"} if ep == QNN else {},
        "session_options": {},
        "profile": "qnn-htp" if ep == QNN else "cpu-x86-64",
        "profile_version": "1",
        "precision": "fp32",
        "inputs": _specs(proto.graph.input),
        "outputs": _specs(proto.graph.output),
        "ir_version": int(proto.ir_version),
        "opsets": {o.domain: int(o.version) for o in proto.opset_import},
        "min_ort": "1.17",
        "ep_package": "onnxruntime-qnn" if ep == QNN else "onnxruntime",
        "metadata": {"recipe": None, "accuracy": None, "latency": None, "gates": []},
    }
    fields.update(extra)
    return VariantSpec(**fields)


def small_bundle(tmp: Path, model: Path, *, qnn: bool = False, name: str = "m.ortpackage") -> Path:
    """A bundle with a CPU variant of ``model`` (and a QNN one when asked), recording
    ``model`` as its source model."""
    specs = [variant_spec(model, "cpu-fp32")]
    if qnn:
        specs.append(variant_spec(model, "qnn-fp32", QNN))
    meta = {
        "source_model": {"name": model.name, "sha256": _sha(model), "size": model.stat().st_size}
    }
    return write_bundle(tmp / name, specs, package_name="m", metadata=meta)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def qnn_or_skip() -> None:
    why = ep_unavailable_reason(QNN)
    if why is not None:
        pytest.skip(why)


def test_small_bundle_opens_with_both_variants(tmp_path: Path) -> None:
    from tests.models import make_mlp

    model = make_mlp(tmp_path)
    bundle = open_bundle(small_bundle(tmp_path, model, qnn=True))
    assert [v.name for v in bundle.variants] == ["cpu-fp32", "qnn-fp32"]
    assert bundle.variant("cpu-fp32").inputs[0].name == "x"
    assert bundle.metadata["source_model"]["name"] == "mlp.onnx"
