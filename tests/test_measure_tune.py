"""tune: the space, the cache it writes, and edgeort.load() using that cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from edgeort.measure.targets import Target, resolve
from edgeort.measure.tune import (
    TUNE_SCHEMA,
    ModelFileVariant,
    knobs_from_point,
    save_tuning,
    tune_target,
    tuning_space,
)
from edgeort.runtime.tuning import tuning_cache_path
from tests.models import make_mlp
from tests.test_measure_helpers import small_bundle


def test_space_per_ep() -> None:
    cpu = tuning_space("CPUExecutionProvider", 4)
    assert [d.name for d in cpu.dimensions] == [
        "threads",
        "graph_opt",
        "execution_mode",
        "spinning",
    ]
    assert cpu.dimensions[0].values == (1, 2, 3, 4) and cpu.size() == 4 * 3 * 2 * 2
    ov = tuning_space("OpenVINOExecutionProvider", 2)
    assert {"ov.num_of_threads", "ov.num_streams"} <= {d.name for d in ov.dimensions}
    qnn = tuning_space("QNNExecutionProvider", 2)
    assert "burst" in next(d for d in qnn.dimensions if d.name == "qnn.htp_performance_mode").values


def test_knobs_from_point_maps_ep_options() -> None:
    k = knobs_from_point(
        {"threads": 2, "spinning": False, "qnn.htp_performance_mode": "burst", "ov.num_streams": 2}
    )
    assert (k.threads, k.spinning) == (2, False)
    assert k.ep_options == {"htp_performance_mode": "burst", "num_streams": "2"}


def _device() -> Any:
    from edgeort.hardware import probe

    return probe(register_plugins=False)


def test_tune_writes_the_cache_that_load_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import edgeort

    bundle_dir = small_bundle(tmp_path, make_mlp(tmp_path))
    device = _device()
    resolved = resolve(bundle_dir, device=device)
    target = resolved.targets[0]
    result, search = tune_target(target, budget_s=5.0, device=device, runs=5)
    assert result.evaluated == len(search.evaluations) >= 2
    assert result.best_ms > 0 and result.default_ms > 0
    path = save_tuning(result, target, device)
    assert path == tuning_cache_path(target.variant, device)
    data = json.loads(path.read_text())
    assert data["schema"] == TUNE_SCHEMA and data["latency_ms"] == pytest.approx(
        result.best_ms, rel=1e-3
    )
    assert data["intra_op_threads"] == result.best["threads"]
    assert data["session_options"]["session.intra_op.allow_spinning"] in {"0", "1"}
    assert data["graph_optimization_level"] == result.best["graph_opt"]
    assert data["model_sha256"] == target.sha256

    with caplog.at_level(logging.INFO):
        model = edgeort.load(bundle_dir, device=device)
    assert "tune cache" in model.reasons["cpu-fp32"]
    opts = model.session.get_session_options()
    assert opts.intra_op_num_threads == result.best["threads"]


def test_plain_model_cache_is_keyed_by_its_file(tmp_path: Path) -> None:
    import hashlib

    model = make_mlp(tmp_path)
    device = _device()
    target = Target("mlp.onnx", model)
    result, _ = tune_target(target, budget_s=2.0, device=device, runs=3)
    path = save_tuning(result, target, device)
    assert path == tuning_cache_path(ModelFileVariant(target), device)
    data = json.loads(path.read_text())
    assert data["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    other = make_mlp(tmp_path, seed=1, filename="mlp.onnx")  # same name, other weights
    assert tuning_cache_path(ModelFileVariant(Target("mlp.onnx", other)), device) != path


def test_budget_must_be_positive(tmp_path: Path) -> None:
    from edgeort.errors import UsageError

    with pytest.raises(UsageError):
        tune_target(Target("m", make_mlp(tmp_path)), budget_s=0)


def test_save_tuning_of_an_unreadable_model_file_is_a_model_error(tmp_path: Path) -> None:
    """A plain model file is read for its digest: a failed read names the file."""
    from edgeort.errors import ModelError
    from edgeort.measure.tune import TuneResult

    model = make_mlp(tmp_path)
    target = Target("mlp.onnx", model)  # no sha256: save_tuning reads the file
    best = {"threads": 1, "graph_opt": "all", "execution_mode": "sequential", "spinning": False}
    result = TuneResult("mlp.onnx", target.ep, best, 1.0, 2.0, 3, 8, "test", 1.0, 0.1, False)
    model.unlink()
    model.mkdir()  # a directory where the model was: unreadable even for root
    with pytest.raises(ModelError) as info:
        save_tuning(result, target, _device())
    assert info.value.path == str(model)
    assert str(model) in str(info.value) and "Is a directory" in str(info.value)
