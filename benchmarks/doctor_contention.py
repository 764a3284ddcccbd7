"""Does `edgeort doctor`'s thread-contention verdict hold from one run to the next?

The verdict (edgeort/measure/checks_runtime.py) is decided on repeated, interleaved rounds:
`found` only when the whole 95 % interval of the median per-round ratio (N-thread over
1-thread latency) lies above 1.3, `ok` only when it lies at or below, `inconclusive`
otherwise. This runs the real check ``--repeats`` times on two models from
``tests/models.py``:

* **planted**: ``make_thread_contention`` (200 LayerNormalizations on [4, 16]): more
  threads should be slower;
* **control**: ``make_mlp`` at batch 64, 512 -> 2048 -> 512: large MatMuls that threads
  split well.

For each run it records the verdict, the median ratio, its interval and the number of
rounds, and what the old rule (median ratio > 1.3, no interval) would have said on the
same rounds. The tests never assert these timings; this is where they are measured.

Writes ``benchmarks/results/doctor_contention.{json,md}``.
Run: ``.venv/bin/python benchmarks/doctor_contention.py [--repeats N] [--budget S]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._runner.machine import describe  # noqa: E402
from edgeort._fs import atomic_write_text  # noqa: E402
from edgeort.measure.checks_runtime import CONTENTION_RATIO, check_threads  # noqa: E402
from edgeort.measure.targets import Target  # noqa: E402
from edgeort.measure.tune import physical_cores  # noqa: E402
from tests.models import make_mlp, make_thread_contention  # noqa: E402


def measure(name: str, model: Path, cores: int, repeats: int, budget: float) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        f = check_threads(Target(name, model), cores, budget_s=budget)
        ev = f.evidence
        runs.append(
            {
                "status": f.status,
                "median_ratio": ev["ratio_n_over_1"],
                "interval": ev["interval"],
                "rounds": ev["rounds"],
                "old_rule": "found" if ev["ratio_n_over_1"] > CONTENTION_RATIO else "ok",
                "round_ratios": ev["round_ratios"],
            }
        )
    return {"model": name, "runs": runs}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# doctor thread-contention: verdict per run",
        "",
        f"{m['cpu_model']}, {m['physical_cores']} physical / {m['logical_cores']} logical "
        f"cores, Python {m['python']}, onnxruntime {m['packages']['onnxruntime']}. "
        f"Threads 1 vs {result['threads']}, budget {result['budget_s']} s per run, "
        f"threshold {result['threshold']}, 95 % interval of the median per-round ratio. "
        f"Load average (1 min) {result['loadavg_1min']['before']:.1f} before, "
        f"{result['loadavg_1min']['after']:.1f} after.",
        "",
        "| model | run | rounds | median ratio | 95 % interval | verdict "
        "| old rule (median > 1.3) |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in result["models"]:
        for i, r in enumerate(entry["runs"], 1):
            low, high = r["interval"]
            lines.append(
                f"| {entry['model']} | {i} | {r['rounds']} | {r['median_ratio']:.2f} | "
                f"{low:.2f}-{high:.2f} | {r['status']} | {r['old_rule']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per check (doctor's)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    cores = physical_cores()
    if cores < 2:
        raise SystemExit(f"needs 2 physical cores to compare threads, this machine has {cores}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "planted": make_thread_contention(tmp),
            "control": make_mlp(tmp, inputs=512, hidden=2048, outputs=512, batch=64),
        }
        entries = [measure(n, p, cores, args.repeats, args.budget) for n, p in models.items()]
    result = {
        "benchmark": "doctor_contention",
        "threads": cores,
        "budget_s": args.budget,
        "threshold": CONTENTION_RATIO,
        "repeats": args.repeats,
        "models": entries,
        "loadavg_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        "machine": describe(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "doctor_contention.json", json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    atomic_write_text(args.out / "doctor_contention.md", text)
    print(text, end="")


if __name__ == "__main__":
    main()
