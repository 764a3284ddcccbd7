"""Variant ranking: measured latencies (tune cache, bundle on the same device), accuracy
gates, profile fit and priority."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import onnxruntime as ort
import pytest

import edgeort
from edgeort.bundle import open_bundle, write_bundle
from edgeort.hardware import probe
from edgeort.runtime import tuning_cache_path
from edgeort.runtime.ranking import rank_variants
from edgeort.runtime.tuning import device_fingerprint, read_tuning
from tests.test_runtime_support import chain_model, variant_spec


def cpu_bundle(tmp: Path, **metadata: dict) -> Path:
    """Two CPU variants: 'vnni' (profile priority 20) and 'plain' (priority 10)."""
    model = chain_model(("Relu",))
    specs = [
        variant_spec(tmp, "plain", "CPUExecutionProvider", model, profile="cpu-x86-64",
                     metadata=metadata.get("plain")),
        variant_spec(tmp, "vnni", "CPUExecutionProvider", model, profile="cpu-x86-64-vnni",
                     metadata=metadata.get("vnni")),
    ]  # fmt: skip
    return write_bundle(tmp / "b", specs, package_name="b")


@pytest.fixture(scope="module")
def device() -> object:
    return probe(register_plugins=False)


def has_vnni(device: object) -> bool:
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & device.cpu_flags)  # type: ignore[attr-defined]


def names(tmp: Path, device: object, **kw: object) -> list[str]:
    bundle = open_bundle(tmp / "b")
    return [c.name for c in rank_variants(bundle.variants, device, **kw).usable]  # type: ignore[arg-type]


def write_tune(variant: object, device: object, latency: float, **extra: object) -> Path:
    path = tuning_cache_path(variant, device)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"latency_ms": latency, **extra}))
    return path


def test_profile_priority_orders_unmeasured_variants(tmp_path: Path, device: object) -> None:
    cpu_bundle(tmp_path)
    if not has_vnni(device):
        assert names(tmp_path, device) == ["plain", "vnni"]  # vnni profile does not fit
        return
    assert names(tmp_path, device) == ["vnni", "plain"]


def test_profile_fit_decides_on_a_device_without_vnni(tmp_path: Path, device: object) -> None:
    cpu_bundle(tmp_path)
    no_vnni = replace(device, cpu_flags=frozenset({"avx2", "fma"}))  # type: ignore[type-var]
    ranking = rank_variants(open_bundle(tmp_path / "b").variants, no_vnni)
    assert [c.name for c in ranking.usable] == ["plain", "vnni"]
    assert "does not fit" in ranking.usable[1].reason


def test_tune_cache_latency_makes_the_fastest_win(tmp_path: Path, device: object) -> None:
    cpu_bundle(tmp_path)
    bundle = open_bundle(tmp_path / "b")
    plain = bundle.variant("plain")
    write_tune(
        plain,
        device,
        0.5,
        session_options={"session.intra_op.allow_spinning": "0"},
        intra_op_threads=1,
        graph_optimization_level="basic",
        execution_mode="parallel",
    )
    ranking = rank_variants(bundle.variants, device)
    first = ranking.usable[0]
    assert first.name == "plain" and first.latency_source == "tune cache"
    assert "measured 0.5 ms here (tune cache)" in first.reason
    # load() applies the tuned settings
    model = edgeort.load(tmp_path / "b", device=device)  # type: ignore[arg-type]
    assert model.variant.name == "plain"
    so = model.session.get_session_options()
    assert so.intra_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert so.execution_mode == ort.ExecutionMode.ORT_PARALLEL


def test_two_measured_the_faster_wins(tmp_path: Path, device: object) -> None:
    cpu_bundle(tmp_path)
    bundle = open_bundle(tmp_path / "b")
    write_tune(bundle.variant("plain"), device, 2.0)
    write_tune(bundle.variant("vnni"), device, 1.0)
    assert names(tmp_path, device)[0] == "vnni"
    write_tune(bundle.variant("vnni"), device, 3.0)
    assert names(tmp_path, device)[0] == "plain"


def test_unreadable_tune_cache_is_ignored(tmp_path: Path, device: object) -> None:
    cpu_bundle(tmp_path)
    plain = open_bundle(tmp_path / "b").variant("plain")
    path = write_tune(plain, device, 1.0)
    path.write_text("{not json")
    assert read_tuning(plain, device) is None  # type: ignore[arg-type]
    path.write_text(json.dumps({"latency_ms": -1}))
    assert read_tuning(plain, device) is None  # type: ignore[arg-type]


def test_bundle_latency_counts_only_on_the_same_device(tmp_path: Path, device: object) -> None:
    here = device_fingerprint(device)  # type: ignore[arg-type]
    latency = {"ms_median": 0.1, "ep": "CPUExecutionProvider", "device_fingerprint": here}
    cpu_bundle(tmp_path, plain={"latency": latency})
    first = rank_variants(open_bundle(tmp_path / "b").variants, device).usable[0]  # type: ignore[arg-type]
    assert first.name == "plain" and first.latency_source == "bundle"
    other = replace(device, cpu_model="Some Other CPU")  # type: ignore[type-var]
    assert device_fingerprint(other) != here
    measured = [c for c in rank_variants(open_bundle(tmp_path / "b").variants, other).usable
                if c.latency_source]  # fmt: skip
    assert measured == []


def test_failed_accuracy_gate_latency_is_not_used(tmp_path: Path, device: object) -> None:
    here = device_fingerprint(device)  # type: ignore[arg-type]
    meta = {
        "latency": {"ms_median": 0.1, "device_fingerprint": here},
        "accuracy": {"metric": "cosine", "value": 0.5, "bound": 0.99, "passed": False},
    }
    cpu_bundle(tmp_path, plain=meta)
    ranking = rank_variants(open_bundle(tmp_path / "b").variants, device)  # type: ignore[arg-type]
    plain = next(c for c in ranking.usable if c.name == "plain")
    assert plain.latency_ms is None
    assert "failed its accuracy gate" in plain.reason


def test_explicit_profile_by_profile_name_or_short_name(tmp_path: Path, device: object) -> None:
    cpu_bundle(tmp_path)
    assert names(tmp_path, device, profile="cpu-x86-64") == ["plain"]
    assert names(tmp_path, device, profile="vnni") == ["vnni"]
