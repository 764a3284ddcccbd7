"""How long ``edgeort.hardware.probe()`` takes on this machine.

Two numbers, both medians:

* **fresh process**: the first ``probe()`` in a new Python process, after
  ``import edgeort.hardware, onnxruntime`` (so it includes plugin EP discovery and
  registration, but not the onnxruntime import itself, which is reported separately);
* **in process**: later ``probe()`` calls in one process (plugins already registered).

Writes ``benchmarks/results/probe_time.json`` and ``benchmarks/results/probe_time.md``.
Run: ``.venv/bin/python benchmarks/probe_time.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeort._fs import atomic_write_text  # noqa: E402

CHILD = """
import json, sys, time
t0 = time.perf_counter()
import onnxruntime
t1 = time.perf_counter()
import edgeort.hardware
t2 = time.perf_counter()
device = edgeort.hardware.probe()
t3 = time.perf_counter()
print(json.dumps({"import_ort_ms": (t1 - t0) * 1e3, "import_probe_ms": (t2 - t1) * 1e3,
                  "first_probe_ms": (t3 - t2) * 1e3,
                  "heavy": sorted(m for m in ("onnx", "click") if m in sys.modules)}))
"""


def fresh(runs: int) -> list[dict[str, float]]:
    out = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, cwd=ROOT
        )
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def in_process(runs: int) -> list[float]:
    from edgeort.hardware import probe

    probe()  # registration happens once per process
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        probe()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    children = fresh(args.runs)
    warm = in_process(args.runs * 4)
    from edgeort.hardware import probe

    device = probe()

    def med(key: str) -> float:
        return round(statistics.median(c[key] for c in children), 2)

    result = {
        "benchmark": "probe_time",
        "runs_fresh": args.runs,
        "runs_in_process": len(warm),
        "median_first_probe_ms": med("first_probe_ms"),
        "median_import_probe_ms": med("import_probe_ms"),
        "median_import_onnxruntime_ms": med("import_ort_ms"),
        "median_in_process_probe_ms": round(statistics.median(warm), 3),
        "onnx_or_click_imported": sorted({m for c in children for m in c["heavy"]}),
        "machine": {
            "cpu": device.cpu_model,
            "logical_cores": device.logical_cores,
            "os": device.os_version,
            "python": platform.python_version(),
            "onnxruntime": device.ort_version,
            "plugins": [f"{p.package} {p.version}" for p in device.plugin_eps],
        },
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "probe_time.json", json.dumps(result, indent=2) + "\n")
    line = (
        f"probe(): first call in a fresh process {result['median_first_probe_ms']} ms "
        f"(median of {args.runs}, incl. plugin registration; import onnxruntime "
        f"{result['median_import_onnxruntime_ms']} ms not included), later calls "
        f"{result['median_in_process_probe_ms']} ms (median of {len(warm)}) on "
        f"{device.cpu_model}, {device.logical_cores} logical cores, onnxruntime "
        f"{device.ort_version}."
    )
    atomic_write_text(out / "probe_time.md", line + "\n")
    print(line)


if __name__ == "__main__":
    main()
