"""Packaging a set of models on a 2-worker local farm against one process.

One process: ``edgeort.package`` for every model, one after the other. Farm: a Dask
scheduler and two ``edgeort farm join`` workers started on this machine (their start-up
is reported apart, not in the timed region), then ``edgeort.farm.client.farm_package``
for the same models and targets (one job per model x target). The two alternate for
``--repeats`` rounds after ``--warmup`` untimed ones; the report gives the median wall
time of each and the ratio one-process / farm (above 1: the farm is faster), and whether
the variant model files of the farm's bundles are byte-identical to the local ones.

Models: the paths given (``model.onnx`` or ``model.onnx=calibration.npz`` for a model
that needs its own calibration data), or ``--zoo`` for the real-model zoo of
``benchmarks/zoo`` (fetched by ``benchmarks/zoo/fetch.py``; each model with its real
calibration and validation data from ``benchmarks/zoo/models.py``, packaged zero-config
as ``benchmarks/zoo/run.py`` does), else a default set: the digits example with its
calibration data and five MLPs built with onnx.helper (tests/models.py). Speed
measurement is off (``--no-speed``) unless ``--speed``, so the recipes are deterministic
and the bundles comparable.

Both workers run on this machine, so the farm can only win by using more cores: on a
2-core machine shared with other work expect no speed-up. Never run in CI:

    .venv/bin/python benchmarks/farm.py [MODEL[=CALIB.npz] ...] [-t cpu -t openvino]
        [--repeats 5] [--warmup 1] [--speed] [--out DIR]
    .venv/bin/python benchmarks/farm.py --zoo [NAME ...] -t cpu --repeats 1 --warmup 0

Writes farm.json and farm.md (``--zoo``: farm-zoo.json and farm-zoo.md) to
benchmarks/results (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import edgeort  # noqa: E402
from benchmarks._runner.machine import package_version  # noqa: E402
from edgeort.bundle import open_bundle  # noqa: E402

Model = tuple[Path, Path | None, Path | None]  # model, calibration, validation


def _zoo_models(folder: Path, names: list[str]) -> list[Model]:
    """The zoo's models, each linked as ``<name>.onnx`` (bundle names stay distinct),
    with the calibration and validation arrays ``benchmarks/zoo/run.py`` packages with."""
    sys.path.insert(0, str(REPO / "benchmarks" / "zoo"))
    import numpy as np
    from fetch import fetch
    from models import CALIBRATION, VALIDATION, ZOO

    unknown = sorted(set(names) - {e.name for e in ZOO})
    if unknown:
        raise SystemExit(f"not in the zoo: {', '.join(unknown)}")
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Model] = []
    for entry in ZOO:
        if names and entry.name not in names:
            continue
        link = folder / f"{entry.name}.onnx"
        link.symlink_to(fetch(entry))
        calib, valid = folder / f"{entry.name}.calib.npz", folder / f"{entry.name}.valid.npz"
        np.savez(calib, **entry.data(CALIBRATION, 0))
        np.savez(valid, **entry.data(VALIDATION, 1))
        out.append((link, calib, valid))
    return out


def _default_models(folder: Path) -> list[Model]:
    from tests.models import make_mlp

    digits = REPO / "examples" / "digits"
    out: list[Model] = [(digits / "model.onnx", digits / "calibration.npz", None)]
    sizes = [(64, 256, 10), (128, 256, 16), (32, 512, 8), (256, 128, 4), (96, 384, 12)]
    for i, (n_in, hidden, n_out) in enumerate(sizes):
        path = make_mlp(
            folder, inputs=n_in, hidden=hidden, outputs=n_out, batch=1, seed=i,
            filename=f"mlp{i}.onnx",
        )  # fmt: skip
        out.append((path, None, None))
    return out


def _parse_models(items: list[str]) -> list[Model]:
    out: list[Model] = []
    for item in items:
        model, _, calib = item.partition("=")
        out.append((Path(model), Path(calib) if calib else None, None))
    return out


def _digests(bundle: Path) -> dict[str, dict[str, str]]:
    b = open_bundle(bundle)
    return {v.name: {f.path: f.sha256 for f in v.files} for v in b.variants}


def _local(models: list[Model], targets: list[str], out: Path, speed: bool) -> float:
    t0 = time.perf_counter()
    for model, calib, valid in models:
        edgeort.package(
            model, targets, output=out / f"{model.stem}.ortpackage", calibration=calib,
            validation=valid, measure_speed=speed,
        )  # fmt: skip
    return time.perf_counter() - t0


def _farm_run(
    client: Any, models: list[Model], targets: list[str], out: Path, speed: bool
) -> float:
    from edgeort.farm.client import farm_package

    t0 = time.perf_counter()
    report = farm_package(
        client, [m for m, _, _ in models], targets, output=out,
        calibration={m: c for m, c, _ in models}, validation={m: v for m, _, v in models},
        measure_speed=speed, timeout=3600,
    )  # fmt: skip
    took = time.perf_counter() - t0
    JOB_SECONDS.append(sum(float(j.get("seconds") or 0) for j in report.jobs))
    return took


JOB_SECONDS: list[float] = []  # per farm run: the jobs' own time, summed over workers


class LocalFarm:
    def __init__(self, base: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{s.getsockname()[1]}"
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "DASK_TEMPORARY_DIRECTORY": str(base)}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.base = base

    def _spawn(self, *args: str) -> None:
        log = open(self.base / f"{args[1]}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "edgeort", *args]
        self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT))
        log.close()

    def start(self) -> float:
        t0 = time.perf_counter()
        self._spawn("farm", "scheduler", "--port", self.address.rsplit(":", 1)[1])
        for name in ("w1", "w2"):
            self._spawn("farm", "join", self.address, "--name", name)
        from edgeort.farm.client import connect, list_workers

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with connect(self.address, timeout=5) as client:
                    if len([w for w in list_workers(client) if w["edgeort"]]) == 2:
                        return time.perf_counter() - t0
            except Exception:
                pass
            time.sleep(1)
        raise SystemExit(f"the farm did not start; logs in {self.base}")

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def _versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnxruntime-ep-openvino": package_version("onnxruntime-ep-openvino"),
        "onnxruntime-qnn": package_version("onnxruntime-qnn"),
        "dask": package_version("dask"),
        "distributed": package_version("distributed"),
        "edgeort": edgeort.__version__,
    }


def _markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    r = doc["result"]
    lines = [
        "# Packaging on a 2-worker local farm vs one process",
        "",
        f"Machine: {m['cpu']} ({m['logical_cores']} logical cores), {m['os']}; load average "
        f"before / after: {m['load_before']} / {m['load_after']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in doc["versions"].items() if v)
        + f". Generated by `benchmarks/farm.py` on {doc['date']}.",
        "",
        f"Models: {len(doc['models'])} ({', '.join(Path(x['model']).name for x in doc['models'])});"
        f" targets: {', '.join(doc['targets'])}; {len(doc['models']) * len(doc['targets'])} "
        f"jobs per farm run; speed measurement {'on' if doc['speed'] else 'off (--no-speed)'}."
        + (
            " The real-model zoo (`--zoo`): each model with the calibration and validation "
            "data `benchmarks/zoo/run.py` packages it with, zero-config otherwise."
            if doc.get("zoo")
            else ""
        ),
        "",
        "| | median wall (s) | runs (s) |",
        "|---|---|---|",
        f"| one process (`edgeort.package` per model) | {r['local_median_s']:.2f} | "
        + ", ".join(f"{x:.2f}" for x in r["local_s"])
        + " |",
        f"| 2-worker local farm (`farm_package`) | {r['farm_median_s']:.2f} | "
        + ", ".join(f"{x:.2f}" for x in r["farm_s"])
        + " |",
        "",
        f"**Ratio one process / farm: {r['ratio']:.2f}** (above 1: the farm is faster). "
        f"Farm start-up (scheduler + 2 workers joined, not in the timed region): "
        f"{r['farm_startup_s']:.1f} s. "
        + (
            "Untimed warm-up round(s) first (imports, first probe in each process): one "
            "process "
            + ", ".join(f"{x:.2f}" for x in r["warmup_local_s"])
            + " s, farm "
            + ", ".join(f"{x:.2f}" for x in r["warmup_farm_s"])
            + " s."
            if r["warmup_local_s"]
            else "No warm-up round: the first round pays imports and each process's first probe."
        ),
        "",
        "Time inside the jobs, summed over both workers, per timed farm run: "
        + ", ".join(f"{x:.2f}" for x in r["farm_job_seconds_sum"])
        + " s (each job loads, checks and runs the fp32 reference of its model, which one "
        "process does once per model for all its targets).",
        "",
        f"Variant model files identical to the one-process run: {r['identical']}.",
        "",
        doc["note"],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", help="MODEL.onnx or MODEL.onnx=CALIBRATION.npz")
    ap.add_argument("-t", "--target", dest="targets", action="append")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--warmup", type=int, default=1, help="untimed first rounds (imports, first probe)"
    )
    ap.add_argument("--speed", action="store_true", help="measure latency while packaging")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument(
        "--zoo", action="store_true", help="the real-model zoo (MODELS: zoo names, default all)"
    )
    args = ap.parse_args()
    targets = args.targets or (["cpu"] if args.zoo else ["cpu", "openvino"])
    work = Path(tempfile.mkdtemp(prefix="edgeort-farm-bench-"))
    if args.zoo:
        models = _zoo_models(work / "models", args.models)
    elif args.models:
        models = _parse_models(args.models)
    else:
        models = _default_models(work / "models")
    load_before = os.getloadavg()
    farm = LocalFarm(work)
    startup = farm.start()
    local_s, farm_s, identical = [], [], True
    warm_local: list[float] = []
    warm_farm: list[float] = []
    try:
        from edgeort.farm.client import connect

        with connect(farm.address) as client:
            for i in range(-args.warmup, args.repeats):
                lo, fa = work / f"local{i}", work / f"farm{i}"
                lo.mkdir()
                order = ["local", "farm"] if i % 2 == 0 else ["farm", "local"]
                for which in order:
                    if which == "local":
                        took = _local(models, targets, lo, args.speed)
                        (local_s if i >= 0 else warm_local).append(took)
                    else:
                        took = _farm_run(client, models, targets, fa, args.speed)
                        (farm_s if i >= 0 else warm_farm).append(took)
                for model, _, _ in models:
                    name = f"{model.stem}.ortpackage"
                    identical &= _digests(lo / name) == _digests(fa / name)
    finally:
        farm.stop()
    load_after = os.getloadavg()
    lm, fm = statistics.median(local_s), statistics.median(farm_s)
    from edgeort.hardware import probe

    dev = probe()
    doc = {
        "benchmark": "farm",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpu": dev.cpu_model, "logical_cores": dev.logical_cores,
            "os": f"{dev.os} {dev.os_version}",
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
        },
        "versions": _versions(),
        "models": [
            {"model": m.name if args.zoo else str(m), "calibration": str(c) if c else None}
            for m, c, _ in models
        ],
        "zoo": args.zoo,
        "targets": targets,
        "speed": args.speed,
        "repeats": args.repeats,
        "result": {
            "local_s": [round(x, 3) for x in local_s], "farm_s": [round(x, 3) for x in farm_s],
            "local_median_s": round(lm, 3), "farm_median_s": round(fm, 3),
            "ratio": round(lm / fm, 3), "farm_startup_s": round(startup, 2),
            "identical": identical,
            "warmup_local_s": [round(x, 3) for x in warm_local],
            "warmup_farm_s": [round(x, 3) for x in warm_farm],
            "farm_job_seconds_sum": [round(x, 3) for x in JOB_SECONDS[args.warmup :]],
        },
        "note": (
            "Both workers and the client share this machine's cores (and, here, the machine "
            "with other work): the farm adds Dask scheduling, transfer of models and "
            "bundles, and a worker process per device, and can only gain from running two "
            "jobs at once. Its purpose is devices that are not this machine; this measures "
            "its overhead, not a speed-up."
        ),
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "farm-zoo" if args.zoo else "farm"
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(_markdown(doc))
    print(_markdown(doc))


if __name__ == "__main__":
    main()
