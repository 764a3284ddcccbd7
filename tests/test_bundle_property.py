"""Property tests: whatever bytes a bundle holds, the reader returns a valid Bundle or
raises an EdgeortError, never anything else. ``EDGEORT_SOAK=1`` runs 10^4 examples."""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeort.bundle import TensorSpec, open_bundle, verify_bundle, write_bundle
from edgeort.bundle._paths import path_problem, twin_problems
from edgeort.bundle._protobuf import MalformedProto, external_refs
from edgeort.errors import BundleError, EdgeortError
from tests.test_bundle_support import forge, make_model, make_spec, reseal, sample_bundle

EXAMPLES = 10_000 if os.environ.get("EDGEORT_SOAK") == "1" else 200
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _open_or_error(root: Path) -> None:
    try:
        bundle = open_bundle(root)
    except EdgeortError:
        return
    verify_bundle(bundle, use_cache=False)  # what opened must stay verifiable
    assert bundle.variants and all(v.files for v in bundle.variants)


@pytest.fixture
def valid(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    root = sample_bundle(tmp_path, external="weights.bin")
    return root, (root / "manifest.json").read_bytes(), (root / "model/component.json").read_bytes()


@FUZZ
@given(raw=st.binary(max_size=2048) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_as_manifest(valid: tuple[Path, bytes, bytes], raw: bytes) -> None:
    root, _, _ = valid
    (root / "manifest.json").write_bytes(raw)
    _open_or_error(root)


@FUZZ
@given(raw=st.binary(max_size=2048) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_as_component(valid: tuple[Path, bytes, bytes], raw: bytes) -> None:
    root, manifest, component = valid
    (root / "manifest.json").write_bytes(manifest)
    (root / "model/component.json").write_bytes(component)
    forge(root, component=lambda _c: raw, rehash=False)  # chain re-made: the parser sees raw
    _open_or_error(root)


def _mutate(draw: st.DrawFn, doc: Any) -> Any:
    """Replace or delete one randomly chosen node of a JSON document."""
    doc = copy.deepcopy(doc)
    parent, key, node = None, None, doc
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = node[key]
    if parent is None:
        return draw(JSON)
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(JSON)
    return doc


@FUZZ
@given(data=st.data())
def test_mutated_json_documents(valid: tuple[Path, bytes, bytes], data: st.DataObject) -> None:
    root, manifest, component = valid
    (root / "manifest.json").write_bytes(manifest)
    (root / "model/component.json").write_bytes(component)
    comp = _mutate(data.draw, json.loads(component))
    forge(root, component=lambda _c: json.dumps(comp).encode(), rehash=False)
    if data.draw(st.booleans()):
        man = _mutate(data.draw, json.loads((root / "manifest.json").read_bytes()))
        (root / "manifest.json").write_bytes(reseal(json.dumps(man).encode()))
    _open_or_error(root)


@FUZZ
@given(data=st.data())
def test_any_change_to_the_manifest_bytes_is_refused(
    valid: tuple[Path, bytes, bytes], data: st.DataObject
) -> None:
    """Flips, truncation, appended or inserted bytes anywhere in manifest.json: always
    refused (the self-digest), even where the result is valid JSON."""
    root, manifest, _ = valid
    i = data.draw(st.integers(0, len(manifest) - 1))
    kind = data.draw(st.sampled_from(["flip", "truncate", "append", "insert"]))
    if kind == "flip":
        raw = (
            manifest[:i] + bytes([manifest[i] ^ data.draw(st.integers(1, 255))]) + manifest[i + 1 :]
        )
    elif kind == "truncate":
        raw = manifest[:i]
    else:
        extra = data.draw(st.binary(min_size=1, max_size=8))
        raw = manifest + extra if kind == "append" else manifest[:i] + extra + manifest[i:]
    (root / "manifest.json").write_bytes(raw)
    with pytest.raises(BundleError):
        open_bundle(root)
    (root / "manifest.json").write_bytes(manifest)


@FUZZ
@given(raw=st.binary(max_size=512))
def test_protobuf_walker_never_crashes(raw: bytes) -> None:
    try:
        refs = external_refs(io.BytesIO(raw), len(raw))
    except MalformedProto:
        return
    assert all(isinstance(r.tensor, str) for r in refs)


@FUZZ
@given(paths=st.lists(st.text(max_size=30), max_size=6))
def test_path_rules_are_total(paths: list[str]) -> None:
    for p in paths:
        why = path_problem(p)
        if why is None:
            parts = p.split("/")
            assert p and not p.startswith("/") and "\\" not in p and ".." not in parts
    assert isinstance(twin_problems(p for p in paths if path_problem(p) is None), list)


@FUZZ
@given(data=st.data())
def test_mutated_zip(tmp_path: Path, data: st.DataObject) -> None:
    good = tmp_path / "good.zip"
    if not good.exists():
        sample_bundle(tmp_path, name="good.zip", zip=True)
    raw = bytearray(good.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(raw))
    try:
        open_bundle(bad)
    except EdgeortError:
        pass


NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)
DIM = (
    st.none()
    | st.integers(0, 2**40)
    | st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
)


@settings(
    max_examples=min(EXAMPLES, 50),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=NAME,
    options=st.dictionaries(
        st.text(max_size=8).filter(lambda s: "\0" not in s),
        st.text(max_size=8).filter(lambda s: "\0" not in s),
        max_size=3,
    ),
    shape=st.lists(DIM, max_size=4),
    extra=st.dictionaries(st.sampled_from(["vendor", "notes", "x"]), JSON, max_size=2),
    version=st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=10),
)
def test_written_fields_read_back_equal(
    tmp_path: Path,
    name: str,
    options: dict[str, str],
    shape: list[Any],
    extra: dict[str, Any],
    version: str,
) -> None:
    src = tmp_path / "src"
    if not (src / "model.onnx").exists():
        make_model(src / "model.onnx")
    options = {
        k: v
        for k, v in options.items()
        if not any(w in k.lower() for w in ("path", "file", "dir", "folder", "library"))
    }
    spec = make_spec(
        src,
        name,
        provider_options=options,
        inputs=[TensorSpec("x", "float32", tuple(shape))],
        metadata=extra,
    )
    b = open_bundle(
        write_bundle(tmp_path / "rt.ortpackage", [spec], package_name="p", package_version=version)
    )
    (v,) = b.variants
    assert (v.name, dict(v.provider_options), v.inputs[0].shape) == (name, options, tuple(shape))
    assert b.package_version == version
    assert {k: v.metadata[k] for k in extra} == json.loads(json.dumps(extra))
