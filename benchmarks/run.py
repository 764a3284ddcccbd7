"""Real-model benchmark: naive ORT fp32 against every edgeort variant on every EP present.

For each real model (the digits CNN of ``examples/digits``; all-MiniLM-L6-v2 exported by
``benchmarks/export_minilm.py``) it packages the model with ``edgeort.pack.package`` once
per target whose EP can run here (cpu; qnn, simulated on x86_64; openvino only when its
plugin lists a device), loads each bundle with ``edgeort.load`` and compares it with the
original fp32 file in a plain ``InferenceSession`` (default options): latency (median,
p95; batch 1, interleaved rounds), file size, cold load time (fresh processes), accuracy
against fp32 on the real validation data. Recipe figures from issue 3 are rebuilt
directly with ``onnxruntime.quantization`` (``_runner/recipes.py``).

Results are merged into ``<out>/models.json`` under this machine's id (other machines'
entries are kept) and ``<out>/models.md`` is rewritten from it. Never run by the tests.

    .venv/bin/python benchmarks/run.py               # full run, 2-4 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick       # smoke run into benchmarks/out/quick
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from _runner import machine as machine_mod  # noqa: E402
from _runner import report, timing  # noqa: E402
from _runner.models import ModelSpec, Samples, accuracy, load_samples, run_all, specs  # noqa: E402
from _runner.recipes import build_recipes  # noqa: E402

from edgeort._fs import atomic_write_text  # noqa: E402

CPU = "CPUExecutionProvider"
TARGETS = (("cpu", CPU), ("qnn", "QNNExecutionProvider"), ("openvino", "OpenVINOExecutionProvider"))
# Provider options a plain session needs on a plugin EP's CPU device (QNN: no default backend).
PLAIN_OPTIONS = {"QNNExecutionProvider": {"backend_type": "htp"}}
LATENCY_SAMPLES = 16  # latency cycles through the first 16 real samples, same for everyone

Outputs = Sequence[np.ndarray]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Contender:
    key: str
    group: str  # baseline | edgeort | recipe
    label: str
    ep: str
    run: Callable[[dict[str, np.ndarray]], Outputs] | None
    load_spec: dict[str, Any] | None
    precision: str | None = None
    simulated: bool = False
    size_bytes: int | None = None
    session_ms: float | None = None
    raw_run: Callable[[dict[str, np.ndarray]], Outputs] | None = None  # edgeort: session.run
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    keep: Any = None  # the Model / session, alive while measured


def _plain(key: str, group: str, label: str, path: Path, ep: str, precision: str) -> Contender:
    """``path`` in a plain InferenceSession: default options (CPU) or the plugin's device."""
    t0 = time.perf_counter()
    if ep == CPU:
        sess = ort.InferenceSession(str(path))
    else:
        from edgeort.hardware.plugins import ep_devices

        so = ort.SessionOptions()
        devices = [d for d in ep_devices(ep) if d.device.type.name == "CPU"]
        so.add_provider_for_devices(devices, PLAIN_OPTIONS.get(ep, {}))
        sess = ort.InferenceSession(str(path), so)
    ms = (time.perf_counter() - t0) * 1e3
    spec = {"how": "ort", "path": str(path), "ep": ep, "device": "cpu",
            "options": PLAIN_OPTIONS.get(ep, {})}  # fmt: skip
    return Contender(key, group, label, sess.get_providers()[0], lambda f: sess.run(None, f),
                     spec, precision, size_bytes=path.stat().st_size, session_ms=ms,
                     keep=sess)  # fmt: skip


def _gates(variant: dict[str, Any]) -> list[str]:
    out = []
    for g in variant["gates"]:
        if g["decision"] == "note":
            continue
        recipe = f" [{g['recipe']}]" if g.get("recipe") else ""
        out.append(f"{g['gate']} {g['decision']}{recipe}: {g['reason']}")
    return out


def _package(spec: ModelSpec, short: str, samples: Samples, work: Path) -> dict[str, Any]:
    from edgeort.pack import package

    out = work / f"{short}.ortpackage"
    shapes = samples.shapes if spec.fixed_shapes else None
    t0 = time.perf_counter()
    result = package(spec.onnx, [short], output=out, calibration=spec.calibration,
                     validation=spec.validation, shapes=shapes)  # fmt: skip
    data = result.to_json()
    data["package_s"] = round(time.perf_counter() - t0, 1)
    return data


def edgeort_target(
    spec: ModelSpec, short: str, ep: str, samples: Samples, work: Path
) -> tuple[dict[str, Any], Contender | None]:
    usable, why, simulated = machine_mod.ep_status(ep)
    if not usable:
        return {"status": "not measured", "ep": ep, "reason": why}, None
    say(f"{spec.name}: packaging for {short}")
    try:
        packed = _package(spec, short, samples, work)
    except Exception as exc:  # a failure here is a measured result, not a crash
        reason = f"not measured: packaging failed: {type(exc).__name__}: {exc}"
        say(f"{spec.name}/{short}: {reason}")
        return {"status": "not measured", "ep": ep, "reason": reason}, None
    variant = packed["variants"][0]
    import edgeort

    record = {"status": "measured", "ep": ep, "simulated": simulated, "profile": variant["profile"],
              "package_s": packed["package_s"], "pack_accuracy": variant["accuracy"],
              "pack_latency": variant["latency"], "gates": _gates(variant)}  # fmt: skip
    t0 = time.perf_counter()
    try:
        model = edgeort.load(packed["path"], profile=variant["profile"])
    except edgeort.EdgeortError as exc:  # packaged, but it cannot run here: a result
        why = str(exc).splitlines()[-1].strip(" -")
        record.update(status="not measured", reason=f"not measured: packaged "
                      f"({variant['precision']}, verified on {variant['accuracy'].get('on_ep')}),"
                      f" but edgeort.load failed: {why}")  # fmt: skip
        say(f"{spec.name}/{short}: {record['reason']}")
        return record, None
    ms = (time.perf_counter() - t0) * 1e3
    load_spec = {"how": "edgeort", "path": packed["path"], "profile": variant["profile"]}
    contender = Contender(
        f"edgeort-{variant['profile']}", "edgeort", f"edgeort {variant['profile']}",
        model.providers[0], lambda f: list(model.run(f).values()), load_spec,
        variant["precision"], simulated, sum(f.size for f in model.variant.files), ms,
        raw_run=lambda f: model.session.run(None, f),
        info={"variant": variant["name"], "providers": model.providers,
              "intra_op_threads": model.session.get_session_options().intra_op_num_threads},
        keep=model,
    )  # fmt: skip
    return record, contender


def recipe_contenders(spec: ModelSpec, work: Path, quick: bool, eps: list[str]) -> list[Contender]:
    out = []
    for built in build_recipes(spec, work / "recipes", quick=quick):
        say(f"{spec.name}: recipe {built.key} built in {built.build_s} s")
        for ep in eps:
            suffix = "" if ep == CPU else f"-{ep.removesuffix('ExecutionProvider').lower()}"
            prec = "fp32" if built.key.startswith("fp32") else "int8"
            if built.path is None:
                out.append(Contender(built.key + suffix, "recipe", built.label, ep, None, None,
                                     prec, error=built.error,
                                     info={"call": built.call}))  # fmt: skip
                continue
            try:
                c = _plain(built.key + suffix, "recipe", built.label, built.path, ep, prec)
            except Exception as exc:  # ORT's own types
                c = Contender(built.key + suffix, "recipe", built.label, ep, None, None, prec,
                              error=f"session: {exc}")  # fmt: skip
            c.info.update(call=built.call, build_s=built.build_s)
            out.append(c)
    return out


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"runs": args.runs, "rounds": args.rounds, "budget_s": args.budget,
            "warmup": args.warmup, "load_reps": args.load_reps}  # fmt: skip


def measure(
    spec: ModelSpec, cs: list[Contender], samples: Samples, args: argparse.Namespace
) -> None:
    naive = cs[0]
    assert naive.run is not None
    ref = run_all(naive.run, samples)
    live = [c for c in cs if c.run is not None]
    for c in live:
        say(f"{spec.name}: accuracy of {c.key} on {len(samples.feeds)} samples")
        try:
            c.info["accuracy"] = accuracy(spec.kind, samples, ref, run_all(c.run, samples))
        except Exception as exc:  # ORT's own types: a variant that cannot run is a result
            c.error, c.run = f"run: {type(exc).__name__}: {exc}", None
    live = [c for c in cs if c.run is not None]
    lat = samples.feeds[:LATENCY_SAMPLES]
    steps: dict[str, Callable[[int], object]] = {}
    for c in live:
        steps[c.key] = lambda i, run=c.run: run(lat[i % len(lat)])
        if c.raw_run is not None:
            steps[c.key + "#session.run"] = lambda i, run=c.raw_run: run(lat[i % len(lat)])
    say(f"{spec.name}: latency, {len(steps)} timed contenders")
    timed = timing.interleaved(steps, runs=args.runs, rounds=args.rounds, budget_s=args.budget,
                               warmup=args.warmup, log=say)  # fmt: skip
    for c in live:
        c.info["latency"] = timing.summary(timed[c.key]["rounds_ns"])
        if c.key + "#session.run" in timed:
            c.info["latency_session_run"] = timing.summary(
                timed[c.key + "#session.run"]["rounds_ns"]
            )
    feeds = args.work / spec.name / "sample.npz"
    np.savez(feeds, **samples.feeds[0])
    for c in live:
        if c.load_spec is None:
            continue
        say(f"{spec.name}: cold load of {c.key} x{args.load_reps}")
        try:
            c.info["load_cold"] = timing.cold_loads({**c.load_spec, "feeds": str(feeds)},
                                                    args.load_reps, ROOT)  # fmt: skip
        except Exception as exc:  # the child's failure is recorded
            c.info["load_cold_error"] = str(exc)


def _by_round(lat: dict[str, Any] | None, base: dict[str, Any] | None) -> list[float] | None:
    """naive / variant median of each interleaved round (drift cancels within a round)."""
    mine, ref = (lat or {}).get("round_medians_ms"), (base or {}).get("round_medians_ms")
    if not mine or not ref or len(mine) != len(ref):
        return None
    return [round(b / m, 3) for b, m in zip(ref, mine, strict=True) if m > 0]


def _row(c: Contender, base: dict[str, Any] | None) -> dict[str, Any]:
    info = dict(c.info)
    lat = info.pop("latency", None)
    median, base_median = (lat or {}).get("median_ms"), (base or {}).get("median_ms")
    speed = round(base_median / median, 3) if base_median and median else None
    info["speedup_vs_naive_by_round"] = _by_round(lat, base)
    return {"key": c.key, "group": c.group, "label": c.label, "ep": c.ep,
            "simulated": c.simulated, "precision": c.precision, "size_bytes": c.size_bytes,
            "session_ms_in_process": None if c.session_ms is None else round(c.session_ms, 2),
            "latency": lat, "speedup_vs_naive": speed, "accuracy": info.pop("accuracy", None),
            "load_cold": info.pop("load_cold", None), "error": c.error, **info}  # fmt: skip


def _loadavg() -> list[float] | None:
    """1, 5 and 15-minute load averages (other work on the machine skews timings)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not on every OS
        return None


def run_model(spec: ModelSpec, args: argparse.Namespace, machine: dict[str, Any]) -> dict[str, Any]:
    load_before = _loadavg()
    work = args.work / spec.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    samples = load_samples(spec.validation, spec.quick_samples if args.quick else None)
    say(f"{spec.name}: {len(samples.feeds)} validation samples, shapes {samples.shapes}")
    naive = _plain("naive-fp32", "baseline", "naive fp32 (plain InferenceSession)", spec.onnx,
                   CPU, "fp32")  # fmt: skip
    cs, targets, present = [naive], {}, [CPU]
    for short, ep in TARGETS:
        record, contender = edgeort_target(spec, short, ep, samples, work)
        targets[short] = record
        if contender is not None:
            cs.append(contender)
        if ep != CPU and record["status"] == "measured" and not record["simulated"]:
            present.append(ep)
    for ep in present[1:]:  # the fp32 file on a real plugin EP, plain ORT (e.g. OpenVINO)
        cs.append(
            _plain(
                f"naive-fp32-{ep.removesuffix('ExecutionProvider').lower()}",
                "baseline",
                f"fp32 in plain InferenceSession on {ep.removesuffix('ExecutionProvider')}",
                spec.onnx,
                ep,
                "fp32",
            )
        )
    cs += recipe_contenders(spec, work, args.quick, present)
    measure(spec, cs, samples, args)
    base = naive.info.get("latency")
    return {
        "title": spec.title, "kind": spec.kind, "onnx": str(spec.onnx.relative_to(ROOT)),
        "onnx_size_bytes": spec.onnx.stat().st_size, "quick": args.quick,
        "validation": {"file": str(spec.validation.relative_to(ROOT)),
                       "samples": len(samples.feeds)},
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "software": {"python": machine["python"], "packages": machine["packages"]},
        "settings": _settings(args), "targets": targets,
        "load_average": {"before": load_before, "after": _loadavg()},
        "contenders": [_row(c, base) for c in cs],
    }  # fmt: skip


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: few runs and samples")
    p.add_argument("--render", action="store_true", help="only rewrite models.md from models.json")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results, "
                   "or benchmarks/out/quick with --quick)")  # fmt: skip
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out" / "work")
    p.add_argument("--models", default="digits,minilm", help="comma-separated: digits,minilm")
    p.add_argument("--machine-id", help="key of this machine in models.json (default: derived)")
    p.add_argument("--runs", type=int, help="timed runs per variant (default 300; quick 30)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 20; quick 3)")
    p.add_argument("--budget", type=float, help="seconds of timed runs per variant (default 30)")
    p.add_argument("--warmup", type=int, help="warm-up runs per variant (default 20; quick 5)")
    p.add_argument("--load-reps", type=int, help="fresh processes per cold load (default 3)")
    args = p.parse_args(argv)
    q = args.quick
    args.out = (args.out or ROOT / "benchmarks" / ("out/quick" if q else "results")).resolve()
    args.work = args.work.resolve()
    args.runs = args.runs or (30 if q else 300)
    args.rounds = args.rounds or (3 if q else 20)
    args.budget = args.budget or (5.0 if q else 30.0)
    args.warmup = args.warmup or (5 if q else 20)
    args.load_reps = args.load_reps or (1 if q else 3)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        data = json.loads((args.out / "models.json").read_text(encoding="utf-8"))
        atomic_write_text(args.out / "models.md", report.render(data))
        say(f"rewrote {args.out / 'models.md'} from models.json")
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ["EDGEORT_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgeort-bench-")  # no tunings
    known = specs()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for name in names:
        if name not in known:
            raise SystemExit(f"--models: unknown model {name!r}; known: {', '.join(known)}")
        if not known[name].onnx.exists():
            raise SystemExit(f"{known[name].onnx} missing: see benchmarks/README.md (export)")
    machine = machine_mod.describe()
    mid = args.machine_id or machine_mod.machine_id(machine)
    say(f"machine {mid}: {machine['cpu_model_raw']}, flags {' '.join(machine['flags'])}")
    results = {}
    for name in names:
        results[name] = run_model(known[name], args, machine)
        gc.collect()
    args.out.mkdir(parents=True, exist_ok=True)
    data = report.merge(args.out / "models.json", mid, machine, results)
    atomic_write_text(args.out / "models.json", json.dumps(data, indent=1, sort_keys=False) + "\n")
    atomic_write_text(args.out / "models.md", report.render(data))
    say(f"wrote {args.out / 'models.json'} and {args.out / 'models.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
