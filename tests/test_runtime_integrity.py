"""load() refuses a bundle whose bytes differ from its manifest before ORT sees a byte.

Each attack runs against a bundle that loaded fine once (so the verification cache is
warm), with ``onnxruntime.InferenceSession`` replaced by a spy that counts constructions.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import edgeort
from edgeort.bundle._seal import seal_manifest
from edgeort.errors import IntegrityError
from tests.test_runtime_support import InferenceSessionSpy, digits_input, example_bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    root = example_bundle(tmp_path, with_qnn=False)
    edgeort.load(root).run({"image": digits_input()})  # loads once: verification cached
    return root


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> InferenceSessionSpy:
    spy = InferenceSessionSpy(ort.InferenceSession)
    monkeypatch.setattr(ort, "InferenceSession", spy)
    return spy


def model_file(root: Path) -> Path:
    return root / "model" / "cpu" / "model.onnx"


def rewrite_component(root: Path, edit: Callable[[dict], None]) -> None:
    """Edit component.json and re-pin its digest in the manifest (and the manifest's own
    self-digest), so only ``edit`` is wrong."""
    component = root / "model" / "component.json"
    data = json.loads(component.read_text("utf-8"))
    edit(data)
    raw = (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    component.write_bytes(raw)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    manifest["additional_metadata"]["edgeort"]["components_sha256"]["model"] = hashlib.sha256(
        raw
    ).hexdigest()
    text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    manifest_path.write_bytes(seal_manifest(text.encode()))  # re-make the self-digest too


def tamper(root: Path) -> str:
    path = model_file(root)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "cpu/model.onnx"


def truncate(root: Path) -> str:
    path = model_file(root)
    path.write_bytes(path.read_bytes()[:-1])
    return "model.onnx"


def extra_file(root: Path) -> str:
    (root / "model" / "cpu" / "notes.txt").write_text("not in the manifest")
    return "notes.txt"


def symlink_out(root: Path) -> str:
    outside = root.parent / "outside.onnx"
    path = model_file(root)
    outside.write_bytes(path.read_bytes())
    path.unlink()
    os.symlink(outside, path)
    return "model.onnx"


def dotdot_path(root: Path) -> str:
    def edit(data: dict) -> None:
        files = data["variants"]["cpu"]["additional_metadata"]["edgeort"]["files"]
        files.append({"path": "../../../outside.onnx", "size": 1, "sha256": "0" * 64})

    rewrite_component(root, edit)
    return "../../../outside.onnx"


def absolute_path(root: Path) -> str:
    def edit(data: dict) -> None:
        data["variants"]["cpu"]["executor_info"]["ort"]["model_file"] = "/etc/hostname"

    rewrite_component(root, edit)
    return "/etc/hostname"


@pytest.mark.parametrize(
    "attack", [tamper, truncate, extra_file, symlink_out, dotdot_path, absolute_path]
)
def test_attack_fails_with_integrity_error_before_ort(
    bundle: Path, spy: InferenceSessionSpy, attack: Callable[[Path], str]
) -> None:
    named = attack(bundle)
    with pytest.raises(IntegrityError) as info:
        edgeort.load(bundle)
    assert spy.calls == []
    assert named in str(info.value) or Path(named).name in str(info.value)


def test_untouched_bundle_reaches_ort(bundle: Path, spy: InferenceSessionSpy) -> None:
    """The spy does see a session when nothing was altered (the check above can fail)."""
    model = edgeort.load(bundle)
    assert len(spy.calls) == 1
    out = model.run({"image": digits_input()})["logits"]
    assert out.shape == (1, 10) and np.isfinite(out).all()
