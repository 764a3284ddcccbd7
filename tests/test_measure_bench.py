"""bench and profile on small models: what is measured, inputs, the baseline, the trace."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest

from edgeort.errors import DataError, ProviderError, UsageError
from edgeort.feeds import generate_feeds, parse_assignments, resolve_shape
from edgeort.measure import bench as bench_module
from edgeort.measure.bench import bench, bench_target, feeds_for, time_runs
from edgeort.measure.targets import Knobs, Target, create_session, resolve, source_model
from edgeort.measure.trace import profile_target, summarize_trace
from tests.models import make_mlp
from tests.test_measure_helpers import small_bundle


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mlp(tmp_path_factory.mktemp("mlp"))


def test_bench_counts_runs_and_reports_every_statistic(mlp: Path) -> None:
    seen: list[int] = []
    r = bench_target(
        Target("mlp", mlp), runs=12, warmup=2, on_progress=lambda d, t, e: seen.append(d)
    )
    s = r.summary
    assert s.n == 12 and seen == list(range(1, 13))
    assert s.min_ms <= s.median_ms <= s.p90_ms <= s.p95_ms <= s.p99_ms <= s.max_ms
    assert s.throughput == pytest.approx(1000.0 / s.mean_ms)
    assert r.session_create_ms > 0 and r.peak_rss_mb > 0
    assert r.input_shapes == {"x": (1, 16)}
    data = r.to_json()
    assert set(data["latency"]) >= {"median_ms", "p90_ms", "p95_ms", "p99_ms", "throughput"}


def test_duration_mode_runs_until_time_is_up(mlp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that moves only when a run ends (0.25 s each): a 1 s duration is 4 runs, the
    last one the run that reaches it. No wall time is read or asserted."""
    session = create_session(Target("mlp", mlp))
    now = [100.0]
    monkeypatch.setattr(bench_module, "time", SimpleNamespace(perf_counter=lambda: now[0]))

    def tick() -> None:
        now[0] += 0.25

    times = time_runs(session, feeds_for(session), duration=1.0, on_run=tick)
    assert times == [0.0, 0.0, 0.0, 0.0]
    now[0] = 100.0
    assert len(time_runs(session, feeds_for(session), duration=0.9, on_run=tick)) == 4
    assert len(time_runs(session, feeds_for(session), duration=0.1, on_run=tick)) == 1
    with_runs = time_runs(session, feeds_for(session), runs=3, duration=1.0, on_run=tick)
    assert len(with_runs) == 3  # whichever limit comes first
    # bench_target hands its duration down: progress ticks after each run's elapsed time
    # is read, so run 5 is the one that sees 1.0 s.
    seen: list[tuple[int, int | None]] = []

    def progress(done: int, total: int | None, elapsed: float) -> None:
        seen.append((done, total))
        tick()

    r = bench_target(Target("mlp", mlp), runs=None, duration=1.0, warmup=0, on_progress=progress)
    assert r.summary.n == 5 and seen == [(i, None) for i in range(1, 6)]


def test_time_runs_needs_runs_or_duration(mlp: Path) -> None:
    session = create_session(Target("mlp", mlp))
    with pytest.raises(UsageError):
        time_runs(session, feeds_for(session))
    with pytest.raises(UsageError):
        time_runs(session, feeds_for(session), runs=0)


def test_knobs_reach_the_session(mlp: Path) -> None:
    session = create_session(
        Target("mlp", mlp), Knobs(threads=1, graph_opt="basic", spinning=False)
    )
    opts = session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_bench_with_compare_reports_speedup_over_the_baseline(mlp: Path) -> None:
    report = bench([Target("mlp", mlp, knobs=Knobs(threads=1))], compare=mlp, runs=5, warmup=1)
    assert report.baseline is not None and report.baseline.label.startswith("baseline")
    speed = report.speedup(report.results[0])
    assert speed == pytest.approx(
        report.baseline.summary.median_ms / report.results[0].summary.median_ms
    )
    assert json.loads(json.dumps(report.to_json()))["results"][0]["speedup_vs_baseline"] == round(
        speed, 3
    )


def test_inputs_from_npy_files(tmp_path: Path, mlp: Path) -> None:
    x = np.full((3, 16), 0.5, dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    r = bench_target(Target("mlp", mlp), input_files={"x": tmp_path / "x.npy"}, runs=2, warmup=0)
    assert r.input_shapes == {"x": (3, 16)}


@pytest.mark.parametrize(
    ("name", "array", "match"),
    [
        ("nope", np.zeros((1, 16), np.float32), "has no input 'nope'"),
        ("x", np.zeros((1, 16), np.float64), "float64"),
        ("x", np.zeros((1, 15), np.float32), "shape"),
    ],
)
def test_bad_input_files_name_the_problem(
    tmp_path: Path, mlp: Path, name: str, array: np.ndarray, match: str
) -> None:
    np.save(tmp_path / "in.npy", array)
    with pytest.raises(DataError, match=match):
        bench_target(Target("mlp", mlp), input_files={name: tmp_path / "in.npy"}, runs=1)


def test_generated_feeds_follow_the_signature() -> None:
    class Arg:
        def __init__(self, name: str, type_: str, shape: list[object]) -> None:
            self.name, self.type, self.shape = name, type_, shape

    feeds = generate_feeds(
        [
            Arg("input_ids", "tensor(int64)", ["b", "s"]),
            Arg("attention_mask", "tensor(int64)", ["b", "s"]),
        ],
        dims={"s": 7},
    )
    assert feeds["input_ids"].shape == (1, 7) and not feeds["input_ids"].any()
    assert feeds["attention_mask"].all()
    assert resolve_shape("x", [None, 3, "h"], {"x:0": 2, "h": 5}) == (2, 3, 5)
    with pytest.raises(UsageError):
        parse_assignments(["novalue"], option="--input")
    with pytest.raises(DataError, match="string"):
        generate_feeds([Arg("t", "tensor(string)", [1])])


def test_bundle_targets_and_recorded_source(tmp_path: Path, mlp: Path) -> None:
    bundle = small_bundle(tmp_path, mlp)
    resolved = resolve(bundle)
    assert resolved.kind == "bundle" and [t.label for t in resolved.targets] == ["cpu-fp32"]
    assert resolved.targets[0].sha256 is not None
    with pytest.raises(DataError, match="not beside the bundle"):
        source_model(resolved, None)  # mlp.onnx lives in another folder
    (tmp_path / mlp.name).write_bytes(mlp.read_bytes())
    assert source_model(resolved, None) == tmp_path / mlp.name


def test_unavailable_ep_is_skipped_with_its_reason(mlp: Path) -> None:
    resolved = resolve(mlp, ep="CoreMLExecutionProvider")
    assert resolved.targets == () and "CoreMLExecutionProvider" in resolved.skipped["mlp.onnx"]
    with pytest.raises(ProviderError, match="not available"):
        create_session(Target("mlp", mlp, "CoreMLExecutionProvider"))


def test_openvino_is_a_target_with_a_device_else_a_recorded_reason(mlp: Path) -> None:
    """An Intel CPU: the plugin lists it, so OpenVINO is a target that runs; an AMD CPU: the
    plugin lists no device, and that reason is recorded."""
    from edgeort.measure.targets import ep_unavailable_reason

    ov = "OpenVINOExecutionProvider"
    why = ep_unavailable_reason(ov)
    resolved = resolve(mlp, ep=ov)
    if why is None:
        assert not resolved.skipped and [t.ep for t in resolved.targets] == [ov]
        session = create_session(resolved.targets[0])
        assert session.get_providers()[0] == ov
    else:
        assert resolved.targets == () and resolved.skipped == {"mlp.onnx": why}


def test_profile_writes_trace_and_summarises_it(tmp_path: Path, mlp: Path) -> None:
    p = profile_target(Target("mlp", mlp), out_dir=tmp_path / "prof", runs=4, warmup=2)
    assert p.trace_path.is_file() and p.trace_path.parent == tmp_path / "prof"
    assert p.runs == 4
    assert sum(o.share for o in p.ops) == pytest.approx(1.0)
    assert set(p.node_eps.values()) == {"CPUExecutionProvider"}
    assert p.ep_share == {"CPUExecutionProvider": pytest.approx(1.0)}
    assert all(o.count % 4 == 0 for o in p.ops)  # warm-up runs are left out


def _event(cat: str, name: str, ts: int, dur: int, op: str = "", ep: str = "") -> dict[str, object]:
    args = {"op_name": op, "provider": ep} if op else {}
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "ph": "X", "args": args}


def test_summarize_trace_exact_numbers(tmp_path: Path) -> None:
    events = [
        _event("Session", "model_run", 0, 100),  # warm-up: ignored
        _event("Node", "a_kernel_time", 10, 90, "MatMul", "CPUExecutionProvider"),
        _event("Session", "model_run", 200, 50),
        _event("Node", "a_kernel_time", 205, 30, "MatMul", "CPUExecutionProvider"),
        _event("Node", "b_kernel_time", 236, 10, "Relu", "QNNExecutionProvider"),
        _event("Session", "model_run", 300, 50),
        _event("Node", "a_kernel_time", 305, 30, "MatMul", "CPUExecutionProvider"),
        _event("Node", "b_kernel_time", 336, 10, "Relu", "QNNExecutionProvider"),
    ]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(events))
    p = summarize_trace(path, runs=2)
    assert p.runs == 2 and p.run_avg_ms == pytest.approx(0.05)
    mm = next(o for o in p.ops if o.op_type == "MatMul")
    assert (mm.count, mm.total_ms, mm.avg_ms, mm.share) == (
        2,
        pytest.approx(0.06),
        pytest.approx(0.03),
        pytest.approx(0.75),
    )
    assert p.slowest[0].name == "a" and p.slowest[0].avg_ms == pytest.approx(0.03)
    assert p.node_eps == {"a": "CPUExecutionProvider", "b": "QNNExecutionProvider"}


def test_unreadable_trace_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError):
        summarize_trace(tmp_path / "bad.json", runs=1)


def test_switch_to_pauses_then_wakes_the_session(tmp_path: Path) -> None:
    """Between sessions timed in turn: a pause longer than a thread pool's spin, then one
    untimed run of the next session."""
    import time

    from edgeort.measure.bench import SETTLE_S, switch_to

    calls: list[float] = []

    class Session:
        def run(self, names: object, feeds: object) -> None:
            calls.append(time.perf_counter())

    start = time.perf_counter()
    switch_to(Session(), {})
    assert len(calls) == 1 and calls[0] - start >= SETTLE_S
