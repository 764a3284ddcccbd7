"""How much does edgeort.load()/Model.run() add over a raw onnxruntime.InferenceSession?

Per-run overhead: ``Model.run(feeds)`` against ``model.session.run(None, feeds)`` -- the
*same* ORT session, so the difference is exactly edgeort's wrapper (signature checks,
error translation, dict of outputs). Blocks of both alternate; medians of per-call times.

Cold start, each in a fresh interpreter (median of several):
  raw       ``import onnxruntime; InferenceSession(model_path)``
  edgeort   ``import edgeort; edgeort.load(bundle)`` -- open, verify, probe, rank, session
            with the verification cache warm (files already verified, unchanged) and
            cold (empty cache: every file is size-checked and sha256-hashed).
Also in-process (imports done) to show where the time goes.

Models: examples/digits (16 KB CNN) and a ~90 MB transformer
(benchmarks/models/minilm/model.onnx when exported, else tests.models.make_bert_like
sized to ~90 MB). Never run in CI:

    .venv/bin/python benchmarks/overhead.py [--quick]

Writes benchmarks/results/overhead.json and overhead.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgeort.bundle import TensorSpec, VariantSpec, write_bundle  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
MINILM = REPO / "benchmarks" / "models" / "minilm" / "model.onnx"
DIGITS = REPO / "examples" / "digits" / "model.onnx"


def _specs(model: onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec]]:
    def spec(v: onnx.ValueInfoProto) -> TensorSpec:
        t = v.type.tensor_type
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        )
        return TensorSpec(v.name, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, dims)

    inits = {i.name for i in model.graph.initializer}
    inputs = [spec(v) for v in model.graph.input if v.name not in inits]
    return inputs, [spec(v) for v in model.graph.output]


def make_bundle(model_path: Path, out: Path) -> Path:
    """A one-variant (CPU EP) bundle of ``model_path``, written by write_bundle."""
    model = onnx.load(model_path, load_external_data=False)
    inputs, outputs = _specs(model)
    src = out.parent / f"{out.name}-src"
    src.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, src / "model.onnx")
    spec = VariantSpec(
        name="cpu",
        ep="CPUExecutionProvider",
        device="cpu",
        source_dir=src,
        model_file="model.onnx",
        provider_options={},
        session_options={},
        profile="cpu-x86-64",
        profile_version="1",
        precision="fp32",
        inputs=inputs,
        outputs=outputs,
        ir_version=model.ir_version,
        opsets={o.domain: o.version for o in model.opset_import},
        min_ort="1.24.2",
        ep_package="onnxruntime",
    )
    return write_bundle(out, [spec], package_name=out.stem)


def transformer_model(work: Path) -> tuple[Path, str]:
    if MINILM.is_file():
        return MINILM, "all-MiniLM-L6-v2 (benchmarks/models/minilm, fp32)"
    from tests.models import make_bert_like

    path = make_bert_like(work, hidden=512, layers=8, vocab=20000)
    return Path(path), "tests.models.make_bert_like (synthetic, fp32)"


def feeds_for(specs: list[Any], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for s in specs:
        shape = tuple(
            d if isinstance(d, int) else (1 if i == 0 else 39) for i, d in enumerate(s.shape)
        )
        dtype = np.dtype(s.dtype)
        if dtype.kind == "f":
            out[s.name] = rng.standard_normal(shape).astype(dtype)
        elif "mask" in s.name:
            out[s.name] = np.ones(shape, dtype)
        elif "type" in s.name:
            out[s.name] = np.zeros(shape, dtype)
        else:
            out[s.name] = rng.integers(1000, 2000, shape).astype(dtype)
    return out


def per_run(bundle: Path, calls: int, rounds: int) -> dict[str, Any]:
    import edgeort

    model = edgeort.load(bundle, providers=["CPUExecutionProvider"])
    feeds = feeds_for(list(model.inputs))
    session = model.session
    for _ in range(max(3, calls // 10)):  # warm up both paths
        model.run(feeds)
        session.run(None, feeds)
    raw_t: list[float] = []
    wrap_t: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for times, call in (
            (raw_t, lambda: session.run(None, feeds)),
            (wrap_t, lambda: model.run(feeds)),
        ):
            for _ in range(calls):
                t0 = clock()
                call()
                times.append(clock() - t0)
    raw = statistics.median(raw_t) / 1e3
    wrap = statistics.median(wrap_t) / 1e3
    return {
        "calls_each": calls * rounds,
        "raw_session_run_us": round(raw, 2),
        "model_run_us": round(wrap, 2),
        "overhead_us": round(wrap - raw, 2),
        "overhead_pct": round(100 * (wrap - raw) / raw, 2),
        "threads": session.get_session_options().intra_op_num_threads,
    }


RAW_CHILD = """
import time, sys
t0 = time.perf_counter()
import onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
print(time.perf_counter() - t0)
"""

EDGEORT_CHILD = """
import time, sys
t0 = time.perf_counter()
import edgeort
m = edgeort.load(sys.argv[1])
print(time.perf_counter() - t0)
"""


PHASES_CHILD = """
import json, sys, time
t0 = time.perf_counter()
laps = {}
def lap(name):
    global t0
    t = time.perf_counter()
    laps[name] = (t - t0) * 1e3
    t0 = t
import numpy, onnxruntime
lap("import onnxruntime+numpy")
import edgeort.runtime
lap("import edgeort.runtime")
from edgeort.bundle import open_bundle
b = open_bundle(sys.argv[1])
lap("open_bundle (cached verification, incl. its imports)")
from edgeort.runtime import _device_for, rank_bundle
d = _device_for(b.variants)
lap("probe + plugin registration")
r = rank_bundle(b, device=d)
lap("rank (profiles, select)")
m = edgeort.runtime.load(b, device=d)
lap("session (load with ranking done)")
print(json.dumps(laps))
"""


def phases(bundle: Path, repeats: int) -> dict[str, float]:
    """Where a fresh process's edgeort cold start goes (median ms per phase)."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", PHASES_CHILD, str(bundle)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}


def _child(code: str, arg: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code, str(arg)], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_start(bundle: Path, model_file: Path, repeats: int) -> dict[str, Any]:
    base = dict(os.environ)
    warm_cache = Path(tempfile.mkdtemp(prefix="edgeort-bench-cache-"))
    env_warm = {**base, "EDGEORT_CACHE_DIR": str(warm_cache)}
    _child(EDGEORT_CHILD, bundle, env_warm)  # fills the verification cache
    raw, warm, cold = [], [], []
    for _ in range(repeats):
        raw.append(_child(RAW_CHILD, model_file, base))
        warm.append(_child(EDGEORT_CHILD, bundle, env_warm))
        fresh = Path(tempfile.mkdtemp(prefix="edgeort-bench-cache-"))
        cold.append(_child(EDGEORT_CHILD, bundle, {**base, "EDGEORT_CACHE_DIR": str(fresh)}))
    r, w, c = (statistics.median(x) * 1e3 for x in (raw, warm, cold))
    return {
        "repeats": repeats,
        "raw_ms": round(r, 1),
        "edgeort_verify_cached_ms": round(w, 1),
        "edgeort_verify_uncached_ms": round(c, 1),
        "cached_over_raw_pct": round(100 * (w - r) / r, 1),
        "uncached_over_raw_pct": round(100 * (c - r) / r, 1),
    }


def in_process(bundle: Path, model_file: Path, repeats: int) -> dict[str, Any]:
    """Imports done; where edgeort's cold start goes (medians, ms)."""
    from edgeort.bundle import open_bundle
    from edgeort.runtime import load

    parts: dict[str, list[float]] = {
        k: []
        for k in ("raw_session", "open_verify_cached", "open_verify_uncached", "load_total_cached")
    }
    for _ in range(repeats):
        t = time.perf_counter()
        ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
        parts["raw_session"].append(time.perf_counter() - t)
        os.environ["EDGEORT_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgeort-bench-cache-")
        t = time.perf_counter()
        open_bundle(bundle)
        parts["open_verify_uncached"].append(time.perf_counter() - t)
        t = time.perf_counter()
        open_bundle(bundle)
        parts["open_verify_cached"].append(time.perf_counter() - t)
        t = time.perf_counter()
        load(bundle)
        parts["load_total_cached"].append(time.perf_counter() - t)
    return {f"{k}_ms": round(statistics.median(v) * 1e3, 2) for k, v in parts.items()}


def machine() -> dict[str, Any]:
    from edgeort.hardware import probe

    d = probe(register_plugins=False)
    return {
        "cpu": d.cpu_model,
        "cpu_vendor": d.cpu_vendor,
        "physical_cores": d.physical_cores,
        "logical_cores": d.logical_cores,
        "os": f"{d.os} {d.os_version}",
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
    }


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# edgeort overhead over raw onnxruntime",
        "",
        f"Machine: {m['cpu']} ({m['physical_cores']} physical / {m['logical_cores']} logical"
        f" cores), {m['os']}; Python {m['python']}, onnxruntime {m['onnxruntime']}, numpy"
        f" {m['numpy']}. Generated by `benchmarks/overhead.py` on {data['date']}.",
        "",
        "## Per-run overhead (same ORT session; medians of per-call times)",
        "",
        "| model | size | raw `session.run` | `Model.run` | overhead | overhead % | calls each |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["models"]:
        p = r["per_run"]
        lines.append(
            f"| {r['name']} | {r['size_mb']} MB | {p['raw_session_run_us']} us "
            f"| {p['model_run_us']} us | {p['overhead_us']} us | {p['overhead_pct']}% "
            f"| {p['calls_each']} |"
        )
    lines += [
        "",
        "Target: <= 2% or <= 20 us per run.",
        "",
        "## Cold start, fresh interpreter each (median)",
        "",
        "| model | raw: `import onnxruntime` + `InferenceSession` "
        "| `import edgeort` + `load()`, verification cached "
        "| same, cache empty (sha256 of every file) | cached over raw | uncached over raw |",
        "|---|---|---|---|---|---|",
    ]
    for r in data["models"]:
        c = r["cold_start"]
        lines.append(
            f"| {r['name']} | {c['raw_ms']} ms | {c['edgeort_verify_cached_ms']} ms | "
            f"{c['edgeort_verify_uncached_ms']} ms | {c['cached_over_raw_pct']}% | "
            f"{c['uncached_over_raw_pct']}% |"
        )
    lines += [
        "",
        "Target: <= 10% over raw ORT.",
        "",
        "## In process (imports already done; median ms)",
        "",
        "| model | raw session | open+verify, cache empty | open+verify, cached "
        "| whole `load()`, cached |",
        "|---|---|---|---|---|",
    ]
    for r in data["models"]:
        i = r["in_process"]
        lines.append(
            f"| {r['name']} | {i['raw_session_ms']} | {i['open_verify_uncached_ms']} | "
            f"{i['open_verify_cached_ms']} | {i['load_total_cached_ms']} |"
        )
    lines += ["", "## Fresh process, edgeort cold start by phase (median ms)", ""]
    for r in data["models"]:
        steps = ", ".join(f"{k} {v}" for k, v in r["fresh_process_phases_ms"].items())
        lines.append(f"- {r['name']}: {steps}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeort-overhead-"))
    transformer, transformer_name = transformer_model(work)
    cases = [
        ("examples/digits CNN", DIGITS, 4000, 5),
        (transformer_name, transformer, 60, 5),
    ]
    repeats = 3 if args.quick else 7
    results = []
    for name, model_file, calls, rounds in cases:
        if args.quick:
            calls = max(10, calls // 4)
        bundle = make_bundle(model_file, work / f"{model_file.parent.name}.ortpackage")
        print(f"{name}: per-run ...", file=sys.stderr)
        per = per_run(bundle, calls, rounds)
        print(f"{name}: cold start ...", file=sys.stderr)
        cold = cold_start(bundle, model_file, repeats)
        inproc = in_process(bundle, model_file, repeats)
        steps = phases(bundle, repeats)
        results.append(
            {
                "name": name,
                "model_file": str(
                    model_file.relative_to(REPO)
                    if model_file.is_relative_to(REPO)
                    else model_file.name
                ),
                "size_mb": round(model_file.stat().st_size / 1e6, 1),
                "per_run": per,
                "cold_start": cold,
                "in_process": inproc,
                "fresh_process_phases_ms": steps,
            }
        )
    data = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "models": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    from edgeort._fs import atomic_write_text

    atomic_write_text(RESULTS / "overhead.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(RESULTS / "overhead.md", markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
