"""Is ``edgeort tune``'s pick as fast as the exhaustive best of the same search space?

Targets: every variant of the shipped example (examples/digits packaged for CPU and QNN,
as a user would) that runs here -- QNN is the HTP simulator on x86_64, labelled
simulated -- and the fp32 MiniLM export in benchmarks/models/minilm/ when present, on CPU.
For each:

1. ``tune``: :func:`edgeort.measure.tune.tune_target` (coordinate descent + successive
   halving, median latencies) within ``--budget`` seconds;
2. exhaustive: every point of the same space measured with the same measurement (eight
   at a time, interleaved), then the best three re-measured by successive halving;
3. head to head: fresh sessions of both picks, ``--rounds`` alternating blocks, medians.
   The check is ``tune median <= 1.05 x exhaustive median`` (the issue's 5 %).

Never run in CI. Writes benchmarks/results/tune.json and tune.md:

    .venv/bin/python benchmarks/tune_vs_exhaustive.py [--budget 30] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from edgeort.measure.bench import feeds_for, time_runs  # noqa: E402
from edgeort.measure.search import exhaustive, key, successive_halving  # noqa: E402
from edgeort.measure.targets import Target, create_session  # noqa: E402
from edgeort.measure.tune import (  # noqa: E402
    SessionMeasure,
    knobs_from_point,
    physical_cores,
    tune_target,
    tuning_space,
)

RESULTS = HERE / "results"
EXAMPLE = ROOT / "examples" / "digits"
MINILM = HERE / "models" / "minilm" / "model.onnx"


def package_example(out: Path) -> Path:
    """The shipped example packaged for CPU and QNN (as a user would), into ``out``."""
    bundle = out / "digits.ortpackage"
    cmd = [sys.executable, "-m", "edgeort", "package", str(EXAMPLE / "model.onnx"),
           "-t", "cpu", "-t", "qnn", "--calibration", str(EXAMPLE / "calibration.npz"),
           "--validation", str(EXAMPLE / "validation.npz"), "-o", str(bundle)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return bundle


def targets(workdir: Path) -> tuple[list[tuple[str, Target]], list[str]]:
    """(label, target) pairs to compare, and what was skipped with why."""
    from edgeort.measure.targets import resolve

    out, skipped = [], []
    resolved = resolve(package_example(workdir))
    for t in resolved.targets:
        out.append((f"digits example, variant {t.label}", t))
    skipped += [f"digits example, variant {k}: {v}" for k, v in resolved.skipped.items()]
    if MINILM.is_file():
        out.append(("MiniLM-L6 fp32 (benchmarks/models/minilm)", Target("minilm", MINILM)))
    else:
        skipped.append(f"MiniLM: {MINILM} not present (run benchmarks/export_minilm.py)")
    return out, skipped


def seq_dims(target: Target, seq: int) -> dict[str, int]:
    """Named dynamic dims: batch-like axis 0 stays 1, the others ``seq``."""
    dims: dict[str, int] = {}
    for arg in create_session(target).get_inputs():
        for axis, d in enumerate(arg.shape):
            if isinstance(d, str):
                dims[d] = 1 if axis == 0 else seq
    return dims


def head_to_head(
    target: Target, a: dict[str, Any], b: dict[str, Any], dims: dict[str, int], rounds: int
) -> tuple[float, float]:
    sessions = [create_session(target, knobs_from_point(p)) for p in (a, b)]
    feeds = feeds_for(sessions[0], dims=dims)
    warm = time_runs(sessions[0], feeds, runs=5)
    n = max(20, min(2000, int(0.05 / max(float(np.median(warm)), 1e-6))))
    times: list[list[float]] = [[], []]
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            times[i] += time_runs(s, feeds, runs=n)
    return float(np.median(times[0]) * 1000), float(np.median(times[1]) * 1000)


def compare(label: str, target: Target, budget: float, rounds: int, seq: int) -> dict[str, Any]:
    cores = physical_cores()
    dims = seq_dims(target, seq)
    t0 = time.perf_counter()
    tuned, _search = tune_target(target, budget_s=budget, dims=dims)
    tune_s = time.perf_counter() - t0
    space = tuning_space(target.ep, cores)
    measure = SessionMeasure(target, dims=dims)
    t0 = time.perf_counter()
    full = exhaustive(space, measure, chunk=8)
    top = [p for p, _ in full.ranked()[:3]]
    best, _ = successive_halving(top, measure)
    exhaustive_s = time.perf_counter() - t0
    same = key(best) == key(tuned.best)
    tune_ms, best_ms = head_to_head(target, dict(tuned.best), best, dims, rounds)
    if same:
        tune_ms = best_ms = (tune_ms + best_ms) / 2
    return {
        "model": label,
        "ep": target.ep,
        "simulated": target.simulated,
        "input_dims": dims,
        "space_size": space.size(),
        "tune": {
            "pick": dict(tuned.best),
            "evaluated": tuned.evaluated,
            "seconds": round(tune_s, 2),
            "budget_s": budget,
        },
        "exhaustive": {
            "pick": best,
            "evaluated": len(full.evaluations),
            "seconds": round(exhaustive_s, 2),
        },
        "same_pick": same,
        "head_to_head_ms": {"tune": round(tune_ms, 4), "exhaustive": round(best_ms, 4)},
        "ratio": round(tune_ms / best_ms, 4),
        "within_5_percent": tune_ms <= 1.05 * best_ms,
        "default_ms": round(tuned.default_ms, 4),
    }


def machine() -> dict[str, Any]:
    from edgeort.hardware import probe

    d = probe()
    return {
        "cpu": d.cpu_model,
        "physical_cores": d.physical_cores,
        "logical_cores": d.logical_cores,
        "os": f"{d.os} {d.os_version}",
        "arch": d.arch,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
    }


def _pick(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(point.items()))


HEADER = (
    "| model | EP | space | tune evals (s) | exhaustive evals (s) | tune pick "
    "| exhaustive pick | tune ms | exhaustive ms | ratio | within 5 % |"
)


def _row(r: dict[str, Any]) -> str:
    ep = r["ep"].replace("ExecutionProvider", "") + (" (simulated)" if r["simulated"] else "")
    cells = [
        r["model"],
        ep,
        r["space_size"],
        f"{r['tune']['evaluated']} ({r['tune']['seconds']})",
        f"{r['exhaustive']['evaluated']} ({r['exhaustive']['seconds']})",
        _pick(r["tune"]["pick"]),
        _pick(r["exhaustive"]["pick"]),
        r["head_to_head_ms"]["tune"],
        r["head_to_head_ms"]["exhaustive"],
        r["ratio"],
        "yes" if r["within_5_percent"] else "NO",
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# tune vs exhaustive search",
        "",
        f"Machine: {m['cpu']}, {m['physical_cores']} physical / {m['logical_cores']} logical "
        f"cores, {m['os']} {m['arch']}, Python {m['python']}, onnxruntime {m['onnxruntime']}. "
        f"Run {data['date']} with `benchmarks/tune_vs_exhaustive.py {data['args']}`.",
        "",
        "Head-to-head medians (ms) of fresh sessions in alternating blocks; "
        "ratio = tune / exhaustive. Both searches pick from medians measured on this "
        "machine at search time; the head-to-head, run after both, is the fair comparison "
        "(a ratio below 1: tune's pick was faster than the exhaustive pick). Evals: "
        "settings measured; (s): seconds spent.",
        "",
        HEADER,
        "|" + "---|" * 11,
        *(_row(r) for r in data["results"]),
    ]
    lines += [f"\nSkipped {s}" for s in data["skipped"]]
    return "\n".join(lines) + "\n"


def rewrite_markdown() -> None:
    """Regenerate tune.md from tune.json (after editing the text above)."""
    data = json.loads((RESULTS / "tune.json").read_text())
    (RESULTS / "tune.md").write_text(markdown(data))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=30.0, help="tune budget per target (s)")
    ap.add_argument("--rounds", type=int, default=15, help="head-to-head rounds")
    ap.add_argument("--seq", type=int, default=64, help="sequence length for transformer inputs")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgeort-tune-bench-") as tmp:
        pairs, skipped = targets(Path(tmp))
        for label, target in pairs:
            print(f"{label} on {target.ep} ...", file=sys.stderr)
            results.append(compare(label, target, args.budget, args.rounds, args.seq))
            print(json.dumps(results[-1]), file=sys.stderr)
    data = {
        "date": time.strftime("%Y-%m-%d"),
        "args": " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "results": results,
        "skipped": skipped,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tune.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / "tune.md").write_text(markdown(data))
    print(markdown(data))
    return 0 if all(r["within_5_percent"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
