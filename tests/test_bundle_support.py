"""Helpers shared by the bundle tests: tiny ONNX models and variant specs (no tests here)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeort.bundle import TensorSpec, VariantSpec, write_bundle
from edgeort.bundle._seal import seal_manifest
from edgeort.errors import BundleError

BIAS = np.arange(4, dtype=np.float32)


def make_model(path: Path, *, bias: np.ndarray = BIAS, external: str | None = None) -> Path:
    """y = x + bias, x: float32[N, 4]; with ``external`` the bias lives in that file."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "B"], ["y"])],
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(bias.astype(np.float32), "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(
            model, path, save_as_external_data=True, location=external, size_threshold=0
        )
    else:
        onnx.save_model(model, path)
    return path


def make_spec(src: Path, name: str = "cpu-fp32", **overrides: Any) -> VariantSpec:
    fields: dict[str, Any] = {
        "name": name,
        "ep": "CPUExecutionProvider",
        "device": "cpu",
        "source_dir": src,
        "model_file": "model.onnx",
        "provider_options": {},
        "session_options": {"session.intra_op.allow_spinning": "0"},
        "profile": "generic-cpu",
        "profile_version": "1",
        "precision": "fp32",
        "inputs": [TensorSpec("x", "float32", ("N", 4))],
        "outputs": [TensorSpec("y", "float32", ("N", 4))],
        "ir_version": 9,
        "opsets": {"": 17},
        "min_ort": "1.17",
        "ep_package": "onnxruntime",
        "metadata": {
            "recipe": None,
            "accuracy": {
                "metric": "max_abs_diff",
                "value": 0.0,
                "bound": 0.01,
                "passed": True,
                "data": "synthetic",
                "samples": 8,
                "on_ep": "CPUExecutionProvider",
            },
            "latency": None,
            "gates": [],
        },
    }
    fields.update(overrides)
    return VariantSpec(**fields)


def qnn_spec(src: Path) -> VariantSpec:
    """A QNN HTP variant: no ORT ``device`` key (it differs by host), backend_type=htp."""
    return make_spec(
        src,
        "qnn-htp",
        ep="QNNExecutionProvider",
        device="",
        provider_options={"backend_type": "htp"},
        ep_package="onnxruntime-qnn",
    )


def sample_bundle(
    tmp: Path,
    *,
    name: str = "b.ortpackage",
    bias: np.ndarray = BIAS,
    external: str | None = None,
    zip: bool = False,
    version: str = "1",
) -> Path:
    src = tmp / f"src-{name}"
    make_model(src / "model.onnx", bias=bias, external=external)
    return write_bundle(
        tmp / name, [make_spec(src)], package_name="demo", package_version=version, zip=zip
    )


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root by relative posix path (for before/after comparisons)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def reseal(raw: bytes) -> bytes:
    """The manifest bytes with the self-digest re-made, as an attacker would (no key
    needed); unchanged when the field is not there exactly once."""
    try:
        return seal_manifest(raw)
    except BundleError:
        return raw


def forge(
    root: Path,
    *,
    component: Any = None,
    manifest: Any = None,
    rehash: bool = True,
    seal: bool = True,
) -> None:
    """Rewrite a bundle's JSON as an attacker who controls every byte (but no signing key)
    would: optional edit functions, then file digests, the component chain and (with
    ``seal``) the manifest's self-digest re-made."""
    comp = json.loads((root / "model/component.json").read_bytes())
    if rehash:
        for body in comp["variants"].values():
            vdir = root / "model" / body["variant_directory"]
            body["additional_metadata"]["edgeort"]["files"] = [
                {
                    "path": p.relative_to(vdir).as_posix(),
                    "size": p.stat().st_size,
                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                }
                for p in sorted(vdir.rglob("*"))
                if p.is_file() and not p.is_symlink()
            ]
    if component is not None:
        comp = component(comp) or comp
    comp_bytes = comp if isinstance(comp, bytes) else json.dumps(comp).encode()
    (root / "model/component.json").write_bytes(comp_bytes)
    man = json.loads((root / "manifest.json").read_bytes())
    man["additional_metadata"]["edgeort"]["components_sha256"]["model"] = hashlib.sha256(
        comp_bytes
    ).hexdigest()
    if manifest is not None:
        man = manifest(man) or man
    raw = man if isinstance(man, bytes) else json.dumps(man).encode()
    (root / "manifest.json").write_bytes(reseal(raw) if seal else raw)
