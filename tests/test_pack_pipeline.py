"""package(): the whole pipeline on small models built in the tests."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeort.bundle import Variant, open_bundle
from edgeort.errors import DataError, ModelError, UsageError
from edgeort.pack import Event, package
from edgeort.profiles import Profile, Recipe, builtin_profiles, get_profile
from tests.models import corrupt_model_bytes, make_bert_like, make_cnn


def _variant(bundle_path: Path, name: str) -> Variant:
    bundle = open_bundle(bundle_path)
    return next(v for v in bundle.variants if v.name == name)


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bert_like(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def bert_calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("calib") / "calib.npz"
    mask = (rng.random((32, 16)) > 0.2).astype(np.int64)
    np.savez(path, input_ids=rng.integers(0, 100, (32, 16)).astype(np.int64), attention_mask=mask)
    return path


def test_bert_packages_fused_with_dynamic_per_channel_int8(bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "bert.ortpackage"
    result = package(bert, ["cpu"], output=out, measure_speed=False)
    assert result.family == "transformer" and result.data == "synthetic"
    variant = _variant(out, result.variants[0].name)
    meta = variant.metadata
    assert variant.ep == "CPUExecutionProvider" and variant.precision == "int8"
    assert meta["fusion"]["Attention"] == 2
    assert meta["recipe"]["mode"] == "dynamic" and meta["recipe"]["per_channel"] is True
    acc = meta["accuracy"]
    assert acc["passed"] is True and acc["data"] == "synthetic"
    assert acc["cosine_mean"] >= acc["bound"] and acc["on_ep"] == "CPUExecutionProvider"
    assert any("synthetic" in note for note in meta["prepare"])
    ops = {
        n.op_type for n in onnx.load(str(out / "model" / variant.name / "model.onnx")).graph.node
    }
    assert "QAttention" in ops or "Attention" in ops
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops
    assert meta["source_model"]["sha256"] == open_bundle(out).metadata["source_model"]["sha256"]


def _bad_profile() -> Profile:
    """A user profile extending the CPU one with static int8 QDQ on every op."""
    cpu = get_profile("cpu")
    every_op = Recipe(precision="int8", mode="static", activation_type="int8", weight_type="int8")
    model = replace(cpu.model, fuse_transformers=False, recipes={"transformer": (every_op,)})
    return replace(
        cpu, name="cpu-all-ops-int8", short="cpu", default=False, builtin=False, model=model
    )


def test_bad_recipe_is_caught_by_the_gate_and_falls_back(
    bert: Path, bert_calibration: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bad.ortpackage"
    profiles = [*builtin_profiles(), _bad_profile()]
    result = package(
        bert, ["cpu-all-ops-int8"], output=out, calibration=bert_calibration,
        profiles=profiles, measure_speed=False,
    )  # fmt: skip
    gates = [g for g in result.variants[0].gates if g["gate"] == "accuracy"]
    assert gates[0]["decision"] == "fail" and "int8 static" in gates[0]["recipe"]
    assert gates[-1]["decision"] == "fallback"
    assert any("fallback" in g.get("recipe", "") for g in gates)
    acc = result.variants[0].accuracy
    assert acc["passed"] is True and acc["value"] >= acc["bound"]
    meta = _variant(out, "cpu-all-ops-int8").metadata
    assert meta["gates"] == [dict(g) for g in result.variants[0].gates]
    assert meta["accuracy"]["data_source"] == "calibration"


def test_static_recipe_without_data_is_refused(tmp_path: Path) -> None:
    model = make_cnn(tmp_path)
    with pytest.raises(DataError) as info:
        package(model, ["cpu"], output=tmp_path / "o", measure_speed=False)
    message = str(info.value)
    assert "needs calibration data" in message and "--calibration" in message
    assert ".npz" in message
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        ({"pixels": np.zeros((4, 3, 16, 16), np.float32)}, "missing input(s) 'image'"),
        ({"image": np.zeros((4, 3, 15, 16), np.float32)}, "dimension 2 is 15, expected 16"),
        ({"image": np.zeros((4, 3, 16, 16), np.int32)}, "dtype int32, expected float32"),
    ],
)
def test_wrong_calibration_data(tmp_path: Path, arrays: dict, needle: str) -> None:
    model = make_cnn(tmp_path)
    np.savez(tmp_path / "calib.npz", **arrays)
    with pytest.raises(DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        package(model, ["cpu"], output=tmp_path / "o", calibration=tmp_path / "calib.npz")


def test_data_files_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fail-fast check's load is reused by the targets that keep the source's inputs."""
    from edgeort.pack import data as data_mod

    loads: list[Path] = []
    real = data_mod.load_data

    def counted(path: Path, *args: object, **kwargs: object) -> data_mod.Dataset:
        loads.append(Path(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(data_mod, "load_data", counted)
    model = make_cnn(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", image=rng.random((8, 3, 16, 16), np.float32))
    np.savez(tmp_path / "valid.npz", image=rng.random((4, 3, 16, 16), np.float32))
    result = package(
        model, ["cpu"], output=tmp_path / "o", calibration=tmp_path / "calib.npz",
        validation=tmp_path / "valid.npz", measure_speed=False,
    )  # fmt: skip
    assert result.data == "validation"
    assert sorted(p.name for p in loads) == ["calib.npz", "valid.npz"]


def test_corrupt_model_is_one_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="truncated"):
        package(corrupt_model_bytes(tmp_path, "truncated"), ["cpu"], output=tmp_path / "o")


def test_usage_errors(bert: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown target 'gpu9000'"):
        package(bert, ["gpu9000"], output=tmp_path / "o")
    with pytest.raises(UsageError, match="--target"):
        package(bert, [], output=tmp_path / "o")
    with pytest.raises(UsageError, match="--max-drop"):
        package(bert, ["cpu"], output=tmp_path / "o", max_drop=2.0)
    with pytest.raises(UsageError, match="no input 'ids'"):
        package(bert, ["cpu"], output=tmp_path / "o", shapes={"ids": (1, 8)})
    # coreml needs fixed shapes and the sequence dim is dynamic: name input and option
    with pytest.raises(UsageError, match=r"input 'input_ids'.*--shape input_ids="):
        package(bert, ["coreml"], output=tmp_path / "o", measure_speed=False)


def test_interrupted_run_leaves_no_output_and_keeps_an_old_bundle(
    bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work_root = tmp_path / "tmp"
    work_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work_root))
    out = tmp_path / "out.ortpackage"

    def stop_at_verify(event: Event) -> None:
        if event.step == "verify":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        package(bert, ["cpu"], output=out, on_event=stop_at_verify, measure_speed=False)
    assert not out.exists()
    assert list(work_root.iterdir()) == []  # the work directory is gone too
    package(bert, ["cpu"], output=out, measure_speed=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(KeyboardInterrupt):
        package(bert, ["directml"], output=out, on_event=stop_at_verify, measure_speed=False)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert (
        sorted(p.name for p in tmp_path.iterdir())
        == ["bert_out_ignored", "out.ortpackage", "tmp"][1:]
    )


def test_events_cover_every_target_and_end_at_one(bert: Path, tmp_path: Path) -> None:
    events: list[Event] = []
    package(
        bert,
        ["cpu", "directml"],
        output=tmp_path / "o",
        on_event=events.append,
        measure_speed=False,
        here=False,
    )
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {e.target for e in events} >= {"cpu-x86-64", "directml"}
    assert {e.kind for e in events} <= {"start", "progress", "done", "warning"}
    assert any(e.kind == "warning" and "DmlExecutionProvider" in e.message for e in events)


def test_fp16_variant_and_zip(bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "bert.zip"
    result = package(bert, ["directml"], output=out, zip=True, measure_speed=False)
    assert out.is_file() and result.path == out
    variant = _variant(out, "directml")
    assert variant.precision == "fp16"
    acc = variant.metadata["accuracy"]
    assert acc["on_ep"] == "CPUExecutionProvider" and "DmlExecutionProvider" in acc["on_ep_reason"]


def test_missing_fixed_shape_fails_before_any_target_is_built(tmp_path: Path) -> None:
    from edgeort import UsageError

    events: list[Event] = []
    with pytest.raises(UsageError, match=r"--shape input_ids="):
        package(
            make_bert_like(tmp_path),
            ["cpu", "qnn"],
            output=tmp_path / "o",
            on_event=events.append,
            measure_speed=False,
        )
    assert not any(e.target for e in events)  # no target started
    assert not (tmp_path / "o").exists()


def test_cache_dir_placeholders_reach_the_bundle_for_the_loader(tmp_path: Path) -> None:
    from edgeort.bundle import open_bundle

    out = tmp_path / "trt.ortpackage"
    package(make_cnn(tmp_path), ["tensorrt"], output=out, measure_speed=False, here=False)
    (variant,) = open_bundle(out).variants
    assert variant.provider_options["trt_engine_cache_path"] == "{cache_dir}"
    assert variant.provider_options["trt_timing_cache_path"] == "{cache_dir}"
