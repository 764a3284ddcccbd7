"""End to end: examples/digits packaged by edgeort.package for cpu, openvino and qnn, then
loaded the way a device would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeort
from edgeort.hardware import probe
from edgeort.profiles import builtin_profiles
from edgeort.profiles.match import resolve_target
from tests.conftest import REPO
from tests.test_runtime_support import openvino_has_device

DIGITS = REPO / "examples" / "digits"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pk") / "digits.ortpackage"
    result = edgeort.package(
        DIGITS / "model.onnx",
        ["cpu", "openvino", "qnn"],
        output=out,
        calibration=DIGITS / "calibration.npz",
        validation=DIGITS / "validation.npz",
    )
    return Path(result.path)


@pytest.fixture(scope="module")
def validation() -> dict[str, np.ndarray]:
    with np.load(DIGITS / "validation.npz") as data:
        return {k: data[k] for k in data.files}


def test_packaged_example_picks_by_the_ranking_and_classifies(
    packaged: Path, validation: dict[str, np.ndarray]
) -> None:
    model = edgeort.load(packaged)
    cpu = resolve_target("cpu", builtin_profiles(), probe()).name  # best CPU profile here
    if openvino_has_device():
        # Both fit this host: the loader takes the one the bundle measured faster here.
        assert model.variant.name in ("openvino-cpu", cpu)
        assert "measured" in model.reasons[model.variant.name]
    else:
        assert model.variant.name == cpu
        assert "reports no device" in model.reasons["openvino-cpu"]
        assert "measured" in model.reasons[cpu]  # the bundle's own latency, same host
    logits = model.run({"image": validation["image"]})["logits"]
    accuracy = float((logits.argmax(-1) == validation["__labels__"]).mean())
    assert accuracy >= 0.95


def test_packaged_qnn_runs_whole_graph_on_simulated_htp_in_strict_mode(
    packaged: Path, validation: dict[str, np.ndarray]
) -> None:
    model = edgeort.load(packaged, profile="qnn", strict=True)
    assert model.variant.ep == "QNNExecutionProvider"
    assert set(model.placement().counts) == {"QNNExecutionProvider"}
    images = validation["image"][:40]
    predictions = [
        int(model.run({"image": images[i : i + 1]})["logits"].argmax()) for i in range(40)
    ]
    reference = edgeort.load(packaged, providers=["CPUExecutionProvider"])
    expected = reference.run({"image": images})["logits"].argmax(-1)
    agreement = float((np.array(predictions) == expected).mean())
    assert agreement >= 0.95
