"""CPU EP vs OpenVINO (classic ``onnxruntime-openvino`` build, in a target runtime) on the
digits and MiniLM variants, in one run.

Per model: ``edgeort package MODEL -t cpu -t openvino --runtimes openvino`` (the OpenVINO
variant verified in the runtime, on the real OpenVINO EP), then, in interleaved rounds,
through the worker protocol (``edgeort.load`` in each environment, one validation
sample, batch 1):

* ``cpu variant, host``: the shipped CPU variant on this environment's onnxruntime
  (CPU EP) -- what ``edgeort.load`` picks on a plain CPU device;
* ``openvino variant, runtime openvino``: the shipped OpenVINO variant on the OpenVINO EP
  of the classic build;
* ``same file on CPU EP, runtime openvino``: the OpenVINO variant's own file on the CPU EP
  of the same build -- the EP comparison with everything else equal.

Ratios are per round (same round, same sample), then the median over rounds. The CPU
vendor is recorded; OpenVINO on a non-Intel CPU is labelled "not officially supported
by Intel". Writes ``benchmarks/results/runtimes.json`` and ``runtimes.md``.

Run: ``.venv/bin/python benchmarks/runtimes.py [--rounds 5] [--runs 20] [--models digits,minilm]``
(creates the ``openvino`` runtime when missing: a network install).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._runner.machine import describe, machine_id  # noqa: E402
from benchmarks._runner.models import specs  # noqa: E402
from edgeort._fs import atomic_write_text  # noqa: E402

OV = "OpenVINOExecutionProvider"
CPU = "CPUExecutionProvider"
RESULTS = ROOT / "benchmarks" / "results"


def _package(spec: Any, out: Path) -> Any:
    from edgeort.pack import package

    shapes = None
    if spec.fixed_shapes:
        data = np.load(spec.validation)
        shapes = {k: (1, *v.shape[1:]) for k, v in data.items() if k != "__labels__"}
    return package(
        spec.onnx, ["cpu", "openvino"], output=out, calibration=spec.calibration,
        validation=spec.validation, shapes=shapes, runtimes=["openvino"],
    )  # fmt: skip


def _same_file_on_cpu(bundle: Path, out: Path) -> Path:
    """The bundle's OpenVINO variant, plus its own file as a CPU EP variant."""
    from edgeort.bundle import VariantSpec, open_bundle, write_bundle

    opened = open_bundle(bundle)
    ov = next(v for v in opened.variants if v.ep == OV)
    specs_ = []
    for name, ep, profile in (("openvino", OV, ov.profile), ("cpu-same-file", CPU, "cpu-x86-64")):
        src = out.parent / f"src-{out.stem}-{name}"
        shutil.copytree(opened.variant_dir(ov), src)
        specs_.append(
            VariantSpec(
                name=name, ep=ep, device="cpu", source_dir=src, model_file=ov.model_file,
                provider_options=dict(ov.provider_options) if ep == OV else {},
                session_options={}, profile=profile, profile_version="1",
                precision=ov.precision, inputs=ov.inputs, outputs=ov.outputs,
                ir_version=ov.ir_version, opsets=dict(ov.opsets), min_ort="1.24.1",
                ep_package="onnxruntime-openvino",
            )
        )  # fmt: skip
    return write_bundle(out, specs_, package_name="same-file")


def _sample(spec: Any, work: Path) -> dict[str, dict[str, Any]]:
    data = np.load(spec.validation)
    feeds = {}
    for index, (name, arr) in enumerate(data.items()):
        if name == "__labels__":
            continue
        path = work / f"sample-{index}.npy"
        np.save(path, arr[0:1])
        feeds[name] = {"npy": str(path), "whole": True}
    return feeds


def _time(worker: Any, bundle: Path, variant: str, feeds: dict, runs: int) -> dict[str, Any]:
    reply = worker.call(
        {
            "job": "run", "bundle": str(bundle), "profile": variant, "strict": False,
            "inputs": feeds, "samples": 1, "latency": {"runs": runs, "warmup": 5},
        }
    )  # fmt: skip
    return {
        "ep": reply["ep"],
        "placement": reply["placement"],
        "ort": f"{reply['ort_build']} {reply['ort_build_version']}",
        "ms": reply["latency"]["ms_median"],
    }


def bench_model(spec: Any, rounds: int, runs: int, work: Path) -> dict[str, Any]:
    from edgeort.runtimes import get
    from edgeort.runtimes.client import Worker

    started = time.perf_counter()
    result = _package(spec, work / f"{spec.name}.ortpackage")
    package_s = time.perf_counter() - started
    bundle = work / f"{spec.name}.ortpackage"
    same = _same_file_on_cpu(bundle, work / f"{spec.name}-same.ortpackage")
    feeds = _sample(spec, work)
    cpu_variant = next(v.name for v in result.variants if v.ep == CPU)
    variants = {v.name: v for v in result.variants}
    configs = {
        "cpu variant, host": ("host", bundle, cpu_variant),
        "openvino variant, runtime openvino": ("openvino", bundle, "openvino-cpu"),
        "same file on CPU EP, runtime openvino": ("openvino", same, "cpu-same-file"),
    }
    host = Worker(sys.executable, name="host")
    runtime = get("openvino").worker()
    workers = {"host": host, "openvino": runtime}
    per: dict[str, list[dict[str, Any]]] = {k: [] for k in configs}
    try:
        for _ in range(rounds):
            for key, (where, path, name) in configs.items():
                per[key].append(_time(workers[where], path, name, feeds, runs))
    finally:
        host.close()
        runtime.close()
    cpu_key, ov_key, same_key = list(configs)
    ratio_host = [c["ms"] / o["ms"] for c, o in zip(per[cpu_key], per[ov_key], strict=True)]
    ratio_same = [c["ms"] / o["ms"] for c, o in zip(per[same_key], per[ov_key], strict=True)]
    rows = {}
    for key, (_, _, name) in configs.items():
        first = per[key][0]
        variant = variants.get(name) if key != same_key else variants.get("openvino-cpu")
        acc = variant.accuracy if variant is not None else {}
        rows[key] = {
            "variant": name,
            "ep": first["ep"],
            "placement": first["placement"],
            "ort": first["ort"],
            "ms_median": statistics.median(r["ms"] for r in per[key]),
            "ms_rounds": [round(r["ms"], 4) for r in per[key]],
            "precision": variant.precision if variant is not None else None,
            "accuracy": {
                k: acc.get(k)
                for k in ("metric", "value", "top1_accuracy", "fp32_top1_accuracy", "on_ep")
            },
        }
    return {
        "model": spec.title,
        "package_s": round(package_s, 1),
        "openvino_verified": {
            "on_ep": variants["openvino-cpu"].accuracy.get("on_ep"),
            "runtime": variants["openvino-cpu"].accuracy.get("runtime"),
        },
        "rows": rows,
        "speedup_openvino_vs_host_cpu_variant": statistics.median(ratio_host),
        "speedup_openvino_vs_cpu_ep_same_file": statistics.median(ratio_same),
        "rounds": rounds,
        "runs_per_round": runs,
    }


def _markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# CPU EP vs OpenVINO (classic onnxruntime-openvino build, in a target runtime)",
        "",
        f"Machine: {m['cpu_model']} ({m['cpu_vendor']}), {m['logical_cores']} logical cores, "
        f"{m['os']} {m['arch']}; host onnxruntime {m['packages'].get('onnxruntime')}; runtime "
        f"`openvino`: {report['runtime']}. Load average at start: {report['loadavg']}.",
        "",
        f"**{report['support_label']}**"
        if report["support_label"]
        else "OpenVINO on an Intel CPU (officially supported).",
        "",
        "Command: `" + report["command"] + "`. Batch 1, one validation sample; "
        f"{report['rounds']} interleaved rounds x {report['runs']} timed runs (5 warm-up); "
        "latency = median over rounds of each round's median; speed-ups are per-round "
        "ratios, median over rounds. Each variant runs through the worker protocol with "
        "`edgeort.load` in its environment.",
        "",
        "| model | configuration | variant (precision) | EP (nodes) | ORT build | median ms | "
        "accuracy vs fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for res in report["models"].values():
        for key, row in res["rows"].items():
            acc = row["accuracy"]
            value = acc.get("value")
            top1 = acc.get("top1_accuracy")
            accuracy = f"{acc.get('metric')} {value:.5f}" if value is not None else "-"
            if top1 is not None:
                accuracy += f", top-1 {top1:.4f} (fp32 {acc.get('fp32_top1_accuracy'):.4f})"
            nodes = ", ".join(
                f"{k.removesuffix('ExecutionProvider')} {v}" for k, v in row["placement"].items()
            )
            lines.append(
                f"| {res['model']} | {key} | {row['variant']} ({row['precision']}) | "
                f"{row['ep']} ({nodes}) | {row['ort']} | {row['ms_median']:.4f} | {accuracy} |"
            )
    lines += ["", "| model | OpenVINO speed-up vs the CPU variant (host ORT) | OpenVINO "
              "speed-up vs the CPU EP on the same file and build | OpenVINO variant verified on |",
              "|---|---|---|---|"]  # fmt: skip
    for res in report["models"].values():
        ver = res["openvino_verified"]
        lines.append(
            f"| {res['model']} | {res['speedup_openvino_vs_host_cpu_variant']:.2f}x | "
            f"{res['speedup_openvino_vs_cpu_ep_same_file']:.2f}x | {ver['on_ep']} in runtime "
            f"{(ver['runtime'] or {}).get('name')} |"
        )
    lines += [
        "",
        "The accuracy column is what `edgeort package` recorded (the OpenVINO variant's "
        "verified in the runtime on the OpenVINO EP; the same-file row reuses that file, so "
        "its accuracy is the OpenVINO variant's, on another EP). The machine is shared "
        "(other jobs ran during the run): compare ratios from this one run, not absolute "
        "times across runs.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--models", default="digits,minilm")
    args = ap.parse_args()
    from edgeort.hardware.ep import support_note
    from edgeort.runtimes import add

    runtime = add("openvino", on_progress=lambda m: print(m, file=sys.stderr))
    machine = describe()
    loadavg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    chosen = [s for n, s in specs().items() if n in args.models.split(",")]
    models = {}
    with tempfile.TemporaryDirectory(prefix="edgeort-bench-rt-") as tmp:
        for spec in chosen:
            if not spec.onnx.exists():
                print(f"skipping {spec.name}: {spec.onnx} missing", file=sys.stderr)
                continue
            print(f"benchmarking {spec.name}", file=sys.stderr)
            models[spec.name] = bench_model(spec, args.rounds, args.runs, Path(tmp))
    report = {
        "benchmark": "runtimes",
        "command": "python benchmarks/runtimes.py " + " ".join(sys.argv[1:]),
        "machine_id": machine_id(machine),
        "machine": machine,
        "runtime": runtime.ort_build,
        "support_label": support_note(OV, machine["cpu_vendor"]),
        "loadavg": loadavg,
        "rounds": args.rounds,
        "runs": args.runs,
        "models": models,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "runtimes.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(RESULTS / "runtimes.md", _markdown(report))
    print(_markdown(report))


if __name__ == "__main__":
    main()
