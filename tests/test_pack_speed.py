"""Speed decisions compare timings taken in the same interleaved rounds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgeort.pack import package
from edgeort.pack.evaluate import CPU, EpChoice, latency_ms_interleaved, make_session
from tests.models import make_cnn, make_mlp

ON_CPU = EpChoice(CPU, CPU)


def test_interleaved_latency_gives_one_median_per_session(tmp_path: Path) -> None:
    small = make_session(make_mlp(tmp_path, inputs=8, hidden=4, outputs=2), ON_CPU)
    feed = {small.get_inputs()[0].name: np.ones((1, 8), np.float32)}
    calls = [0, 0]

    class Counting:  # the same session, counting its runs (real ORT runs)
        def __init__(self, slot: int) -> None:
            self.slot = slot

        def run(self, names: None, f: dict[str, np.ndarray]) -> list[np.ndarray]:
            calls[self.slot] += 1
            return small.run(names, f)

    times = latency_ms_interleaved([Counting(0), Counting(1)], feed, runs=6, rounds=3, warmup=2)  # type: ignore[list-item]
    assert len(times) == 2 and all(t > 0 for t in times)
    # warmup + per round one untimed run after the pause (switch_to) + the timed runs
    assert calls == [2 + 3 * (1 + 2), 2 + 3 * (1 + 2)]


def test_speed_gate_reads_the_interleaved_timings(tmp_path: Path) -> None:
    model = make_cnn(tmp_path, batch=1)
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, image=rng.standard_normal((16, 3, 16, 16)).astype(np.float32))
    result = package(model, ["cpu"], output=tmp_path / "b", calibration=data, validation=data)
    gates = result.variants[0].gates
    notes = [g for g in gates if g["gate"] == "speed" and g["decision"] == "note"]
    speed = [g for g in gates if g["gate"] == "speed" and g["decision"] in ("keep", "replace")]
    assert speed, gates
    if speed[-1]["reason"] == "the variant is fp32":  # no int8 passed: nothing to compare
        return
    assert notes and "interleaved" in notes[-1]["reason"], gates
    timed = [float(m) for m in re.findall(r"= ([0-9.]+) ms", notes[-1]["reason"])]
    gated = [float(m) for m in re.findall(r"([0-9.]+) ms", speed[-1]["reason"])]
    # the gate compares the numbers of the last interleaved rounds (printed to 3 digits)
    assert len(gated) == len(timed) == 2
    assert all(abs(g - t) <= 0.0011 for g, t in zip(gated, timed, strict=True)), (gated, timed)
    latency = result.variants[0].latency
    assert latency is not None
    shipped, fp32 = timed
    if speed[-1]["decision"] == "keep":
        assert latency["ms_median"] == round(shipped, 4)
        assert latency["fp32_ms_median"] == round(fp32, 4)
