"""How much does edgeort.load()/Model.run() add over a raw onnxruntime.InferenceSession?

Per-run overhead: ``Model.run(feeds)`` against ``model.session.run(None, feeds)`` -- the
*same* ORT session, so the difference is exactly edgeort's wrapper (signature checks,
error translation, dict of outputs). Blocks of both alternate; medians of per-call times.

Cold start as the issue defines it ("open + verify + session" against raw ORT session
creation, in process after imports): each figure is a fresh interpreter that imports
everything first and times only the first call -- ``InferenceSession(model_path)``
against ``edgeort.load(bundle)`` (open, verify, probe, rank, session), the latter with
the verification cache warm (files verified before, unchanged) and empty (every file
size-checked and sha256-hashed).

Fresh process including imports, reported separately: ``import onnxruntime;
InferenceSession`` against ``import edgeort; edgeort.load``, with a bytecode cache (as an
installed wheel has) and with edgeort compiled from source at each start (how this
checkout runs under ``PYTHONDONTWRITEBYTECODE=1``). Plus the steady state in one process
and a per-phase split of a fresh process.

Models: examples/digits (16 KB CNN) and a ~90 MB transformer
(benchmarks/models/minilm/model.onnx when exported, else tests.models.make_bert_like
sized to ~90 MB). The machine is shared: run it at low load average. ``--baseline-code
DIR`` (a checkout of the code before a change, e.g. from ``git archive``; it must read
the bundles this code writes) adds an interleaved before/after comparison. Never run in
CI:

    .venv/bin/python benchmarks/overhead.py [--quick] [--out DIR] [--baseline-code DIR]

Writes overhead.json and overhead.md to benchmarks/results (or ``--out``).

``--cold-start`` measures only the whole-program cold start of the example bundle
(examples/digits packaged by ``edgeort.package`` for cpu and qnn): a fresh process that
imports, loads and runs once -- ``import numpy, onnxruntime; InferenceSession(the picked
variant's file).run()`` against ``import numpy, edgeort; edgeort.load(bundle).run()`` --
interleaved, bytecode and verification caches warm, and adds it to the existing
overhead.json/overhead.md (target: edgeort <= 1.3x raw). With ``--baseline-code DIR`` the
code in DIR runs in the same rounds too (before/now)::

    .venv/bin/python benchmarks/overhead.py --cold-start [--repeats 15] \
        [--baseline-code DIR --baseline-label "main at abc1234"]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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

from benchmarks._runner.machine import package_version  # noqa: E402
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

# The whole start of a program that runs the model once (the --cold-start figure).
RAW_RUN_CHILD = """
import time, sys
t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
s.run(None, {"image": np.zeros((1, 1, 8, 8), np.float32)})
print(time.perf_counter() - t0)
"""

EDGEORT_RUN_CHILD = """
import time, sys
t0 = time.perf_counter()
import numpy as np
import edgeort
m = edgeort.load(sys.argv[1])
m.run({"image": np.zeros((1, 1, 8, 8), np.float32)})
print(time.perf_counter() - t0, m.variant.name)
"""

# The modules edgeort.load() imports (beyond ``import edgeort``), in import order.
MODULES_CHILD = """
import json, sys
import edgeort
before = set(sys.modules)
edgeort.load(sys.argv[1])
print(json.dumps([m for m in sys.modules if m not in before]))
"""

# Imports done, then only the first call is timed: the cold start.
FIRST_RAW_CHILD = """
import time, sys
import numpy, onnxruntime as ort
t0 = time.perf_counter()
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
print(time.perf_counter() - t0)
"""

FIRST_EDGEORT_CHILD = """
import importlib, json, time, sys
import edgeort
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
t0 = time.perf_counter()
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
lap("probe + plugin registration (incl. imports)")
r = rank_bundle(b, device=d)
lap("rank (profiles, select; incl. imports)")
m = edgeort.runtime.load(b, device=d)
lap("session (load with ranking done)")
print(json.dumps(laps))
"""


def child_env(
    *, pyc: bool, pycache: Path, cache: Path | None = None, code: Path = REPO
) -> dict[str, str]:
    """Children import edgeort from ``code``. ``pyc``: with a bytecode cache (warmed by the
    first run, as an installed wheel has); else every module is compiled from source."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    if pyc:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    if cache is not None:
        env["EDGEORT_CACHE_DIR"] = str(cache)
    return env


def _child(code: str, args: list[str], env: dict[str, str], cwd: Path = REPO) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1e3, 1)


def _pct(value: float, base: float) -> float:
    return round(100 * (value - base) / base, 1)


def _new_cache(work: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix="cache-", dir=work))


def _raw_cached_uncached(
    raw_run: tuple[str, list[str]],
    edgeort_run: tuple[str, list[str]],
    env_warm: dict[str, str],
    *,
    repeats: int,
    work: Path,
    pyc: bool,
) -> tuple[float, float, float]:
    """Median ms of ``repeats`` interleaved fresh processes: raw ORT and edgeort in
    ``env_warm`` (its verification cache already filled), then edgeort with an empty cache."""
    raw, cached, uncached = [], [], []
    for _ in range(repeats):
        raw.append(float(_child(*raw_run, env_warm)))
        cached.append(float(_child(*edgeort_run, env_warm)))
        env = child_env(pyc=pyc, pycache=work / "pycache", cache=_new_cache(work))
        uncached.append(float(_child(*edgeort_run, env)))
    return _ms(raw), _ms(cached), _ms(uncached)


def fresh_process(
    bundle: Path, model_file: Path, repeats: int, work: Path, *, pyc: bool
) -> dict[str, Any]:
    """Fresh interpreter each, imports included (the whole start of a program)."""
    pycache, warm = work / "pycache", _new_cache(work)
    env_warm = child_env(pyc=pyc, pycache=pycache, cache=warm)
    _child(EDGEORT_CHILD, [str(bundle)], env_warm)  # fills the verification (and .pyc) cache
    _child(RAW_CHILD, [str(model_file)], env_warm)
    r, c, u = _raw_cached_uncached(
        (RAW_CHILD, [str(model_file)]),
        (EDGEORT_CHILD, [str(bundle)]),
        env_warm,
        repeats=repeats,
        work=work,
        pyc=pyc,
    )
    return {
        "repeats": repeats,
        "bytecode_cache": pyc,
        "raw_ms": r,
        "edgeort_verify_cached_ms": c,
        "edgeort_verify_uncached_ms": u,
        "cached_over_raw_pct": _pct(c, r),
        "uncached_over_raw_pct": _pct(u, r),
    }


def first_call(bundle: Path, model_file: Path, repeats: int, work: Path) -> dict[str, Any]:
    """The issue's cold start: in a fresh process with every import done, the first
    ``InferenceSession`` against the first ``edgeort.load()`` (open + verify + probe +
    rank + session)."""
    pycache, warm = work / "pycache", _new_cache(work)
    env_warm = child_env(pyc=True, pycache=pycache, cache=warm)
    modules = _child(MODULES_CHILD, [str(bundle)], env_warm)  # also warms the cache
    r, c, u = _raw_cached_uncached(
        (FIRST_RAW_CHILD, [str(model_file)]),
        (FIRST_EDGEORT_CHILD, [str(bundle), modules]),
        env_warm,
        repeats=repeats,
        work=work,
        pyc=True,
    )
    return {
        "repeats": repeats,
        "raw_session_ms": r,
        "load_verify_cached_ms": c,
        "load_verify_uncached_ms": u,
        "cached_over_raw_pct": _pct(c, r),
        "uncached_over_raw_pct": _pct(u, r),
    }


def interleaved(
    bundle: Path, model_file: Path, repeats: int, work: Path, before: Path
) -> dict[str, Any]:
    """Before/after on a noisy machine: each repeat runs, in shuffled order, a fresh
    process with imports (raw ORT, edgeort from ``before``, edgeort from REPO) and the
    first ``load()`` with imports done (both codes); bytecode and verification cached."""
    pycache, warm = work / "pycache", _new_cache(work)
    env = {
        "before": child_env(pyc=True, pycache=pycache, cache=warm, code=before),
        "after": child_env(pyc=True, pycache=pycache, cache=warm),
    }
    where = {"before": before, "after": REPO}
    mods = {k: _child(MODULES_CHILD, [str(bundle)], env[k], where[k]) for k in env}
    _child(RAW_CHILD, [str(model_file)], env["after"])
    jobs = [("raw", RAW_CHILD, [str(model_file)], "after")]
    for k in env:
        jobs.append((k, EDGEORT_CHILD, [str(bundle)], k))
        jobs.append((f"first_{k}", FIRST_EDGEORT_CHILD, [str(bundle), mods[k]], k))
    samples: dict[str, list[float]] = {job[0]: [] for job in jobs}
    rng = random.Random(0)
    for _ in range(repeats):
        for key, code, args, k in rng.sample(jobs, len(jobs)):
            samples[key].append(float(_child(code, args, env[k], where[k])))
    out: dict[str, Any] = {"repeats": repeats, **{f"{k}_ms": _ms(v) for k, v in samples.items()}}
    for prefix in ("", "first_"):
        pairs = zip(samples[f"{prefix}before"], samples[f"{prefix}after"], strict=True)
        out[f"{prefix}saved_ms"] = _ms([b - a for b, a in pairs])
    return out


def phases(bundle: Path, repeats: int, work: Path) -> dict[str, float]:
    """Where a fresh process's edgeort cold start goes (median ms per phase)."""
    env = child_env(pyc=True, pycache=work / "pycache", cache=_new_cache(work))
    _child(PHASES_CHILD, [str(bundle)], env)
    runs = [json.loads(_child(PHASES_CHILD, [str(bundle)], env)) for _ in range(repeats)]
    return {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}


def in_process(bundle: Path, model_file: Path, repeats: int, work: Path) -> dict[str, Any]:
    """Steady state in this process (imports done, every cache warm; medians, ms)."""
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
        os.environ["EDGEORT_CACHE_DIR"] = str(_new_cache(work))
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


def cold_start_run(repeats: int, work: Path, before: Path | None = None) -> dict[str, Any]:
    """The issue's whole-program cold start on the example bundle (cpu + qnn variants).
    ``before``: a checkout of earlier code, timed in the same rounds (before/now)."""
    import edgeort

    bundle = work / "digits-cpu-qnn.ortpackage"
    digits = DIGITS.parent
    edgeort.package(
        DIGITS,
        ["cpu", "qnn"],
        output=bundle,
        calibration=digits / "calibration.npz",
        validation=digits / "validation.npz",
    )
    env = child_env(pyc=True, pycache=work / "pycache", cache=_new_cache(work))
    picked = _child(EDGEORT_RUN_CHILD, [str(bundle)], env).split()[1]  # warms both caches
    opened = edgeort.open_bundle(bundle)
    model_file = opened.model_path(opened.variant(picked))
    _child(RAW_RUN_CHILD, [str(model_file)], env)
    # The same code with the load-plan cache off: every process probes and ranks
    # (what the first load of a bundle on a host does).
    env_full = {**env, "EDGEORT_NO_PLAN_CACHE": "1"}
    env_before: dict[str, str] | None = None
    if before is not None:
        env_before = child_env(
            pyc=True, pycache=work / "pycache", cache=_new_cache(work), code=before
        )
        _child(EDGEORT_RUN_CHILD, [str(bundle)], env_before, before)  # warms its caches
    raw: list[float] = []
    ours: list[float] = []
    full: list[float] = []
    old: list[float] = []
    for i in range(repeats):
        order = [
            (RAW_RUN_CHILD, model_file, raw, env, REPO),
            (EDGEORT_RUN_CHILD, bundle, ours, env, REPO),
            (EDGEORT_RUN_CHILD, bundle, full, env_full, REPO),
        ]
        if env_before is not None and before is not None:  # run in its dir: `-c` puts cwd first
            order.append((EDGEORT_RUN_CHILD, bundle, old, env_before, before))
        random.Random(i).shuffle(order)  # every round runs each once, in its own order
        for code, arg, into, child, cwd in order:
            into.append(float(_child(code, [str(arg)], child, cwd).split()[0]))

    raw_ms, ours_ms = _ms(raw), _ms(ours)
    out: dict[str, Any] = {
        "bundle": "examples/digits packaged for cpu and qnn (edgeort.package)",
        "picked": picked,
        "repeats": repeats,
        "raw_ms": raw_ms,
        "edgeort_ms": ours_ms,
        "ratio": round(ours_ms / raw_ms, 2),
        "full_path_ms": _ms(full),
        "full_path_ratio": round(_ms(full) / raw_ms, 2),
        "raw_all_ms": [round(x * 1e3, 1) for x in raw],
        "edgeort_all_ms": [round(x * 1e3, 1) for x in ours],
        "full_path_all_ms": [round(x * 1e3, 1) for x in full],
        "load_average": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "onnxruntime-qnn": package_version("onnxruntime-qnn"),
            "onnxruntime-ep-openvino": package_version("onnxruntime-ep-openvino"),
            "numpy": np.__version__,
        },
    }
    if old:
        out["before_ms"] = _ms(old)
        out["before_ratio"] = round(_ms(old) / raw_ms, 2)
        out["before_all_ms"] = [round(x * 1e3, 1) for x in old]
    return out


def _cold_start_lines(data: dict[str, Any]) -> list[str]:
    c = data.get("cold_start_run")
    if not c:
        return []
    v = c["versions"]
    met = "met" if c["ratio"] <= 1.3 else "missed"
    lines = [
        "## Whole-program cold start: import, load, run once (median ms)",
        "",
        f"A fresh process each ({c['repeats']} of each, interleaved; bytecode and verification",
        "caches warm): `import numpy, onnxruntime` + `InferenceSession(variant file)` +",
        "one `run()` against `import numpy, edgeort` + `edgeort.load(bundle)` + one `run()`,",
        f"on {c['bundle']}; edgeort picked `{c['picked']}`, raw ORT ran that variant's file.",
        f"Measured {c['date']} for code {c.get('code', '?')} on {c['machine']['cpu']}",
        f"({c['machine']['logical_cores']} logical cores), not the machine of the sections below.",
        f"Load average during the run: {c['load_average']}. Versions: Python {v['python']},",
        f"onnxruntime {v['onnxruntime']}, onnxruntime-qnn {v['onnxruntime-qnn']},",
        f"onnxruntime-ep-openvino {v['onnxruntime-ep-openvino']}, numpy {v['numpy']}.",
        "",
        "*edgeort* follows the load plan the warm-up run kept (`edgeort.runtime.plans`:",
        "no probe, no profiles, no ranking); *full path* is the same code with",
        "`EDGEORT_NO_PLAN_CACHE=1`, deciding in every process, as the first load of a",
        "bundle on a host does.",
        "",
        "| raw ORT | edgeort | ratio | target | edgeort, full path | ratio |",
        "|---|---|---|---|---|---|",
        f"| {c['raw_ms']} | {c['edgeort_ms']} | {c['ratio']}x | <= 1.3x: {met} "
        f"| {c.get('full_path_ms', '-')} | {c.get('full_path_ratio', '-')}x |",
        "",
    ]
    if "before_ms" not in c:
        return lines
    return [
        *lines,
        f"Before/now, in the same rounds (each round runs all four once, shuffled): "
        f"{c.get('before_label', 'before')} took {c['before_ms']} ms "
        f"({c['before_ratio']}x raw), this code {c['edgeort_ms']} ms ({c['ratio']}x raw).",
        "",
    ]


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


def _table(title: str, intro: list[str], header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = [f"## {title}", "", *intro, *([""] if intro else [])]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _sections(models: list[dict[str, Any]]) -> list[str]:
    per = [(r, r["per_run"]) for r in models]
    out = _table(
        "Per-run overhead (same ORT session; medians of per-call times)",
        [],
        ["model", "size", "raw `session.run`", "`Model.run`", "overhead", "overhead %", "calls"],
        [[r["name"], f"{r['size_mb']} MB", f"{p['raw_session_run_us']} us",
          f"{p['model_run_us']} us", f"{p['overhead_us']} us", f"{p['overhead_pct']}%",
          p["calls_each"]] for r, p in per],
    )  # fmt: skip
    out += ["Target: <= 2% or <= 20 us per run: " + "; ".join(
        f"{r['name']} {'met' if p['overhead_pct'] <= 2 or p['overhead_us'] <= 20 else 'missed'}"
        for r, p in per) + ".", ""]  # fmt: skip
    first = [(r, r["first_call"]) for r in models]
    out += _table(
        "Cold start as the issue defines it (fresh process, imports done; median ms)",
        ["Each figure is its own fresh interpreter that first imports everything the call",
         "needs, then times only the first call: raw `InferenceSession(model)` against the",
         "first `edgeort.load(bundle)` (open + verify + probe + rank + session)."],
        ["model", "raw session", "`load()`, verification cached",
         "`load()`, cache empty (sha256 of every file)", "cached over raw", "uncached over raw"],
        [[r["name"], c["raw_session_ms"], c["load_verify_cached_ms"],
          c["load_verify_uncached_ms"], f"{c['cached_over_raw_pct']}%",
          f"{c['uncached_over_raw_pct']}%"] for r, c in first],
    )  # fmt: skip
    out += ["Target: <= 10% over raw ORT (verification cached): " + "; ".join(
        f"{r['name']} {'met' if c['cached_over_raw_pct'] <= 10 else 'missed'} "
        f"({c['load_verify_cached_ms'] - c['raw_session_ms']:+.1f} ms)" for r, c in first
    ) + ".", ""]  # fmt: skip
    kinds = (("fresh_process", "cached"), ("fresh_process_source", "compiled"))
    fresh = [(r, label, r[key]) for r in models for key, label in kinds]
    out += _table(
        "Fresh process including imports (median ms)",
        ["`import onnxruntime` + `InferenceSession` against `import edgeort` + `load()`, each",
         "in a new interpreter: the whole start of a program. *cached*: every module's",
         "`.pyc` exists (as after `pip install`). *compiled*: edgeort's modules are compiled",
         "from source at every start (`PYTHONDONTWRITEBYTECODE=1` and no `__pycache__` in",
         "the checkout, as this machine runs it; onnxruntime and numpy still read their",
         "installed `.pyc`)."],
        ["model", "bytecode", "raw", "edgeort, verification cached", "edgeort, cache empty",
         "cached over raw", "uncached over raw"],
        [[r["name"], label, c["raw_ms"], c["edgeort_verify_cached_ms"],
          c["edgeort_verify_uncached_ms"], f"{c['cached_over_raw_pct']}%",
          f"{c['uncached_over_raw_pct']}%"] for r, label, c in fresh],
    )  # fmt: skip
    steady = [(r, r["in_process"]) for r in models]
    out += _table(
        "In process, steady state (imports done, every cache warm; median ms)",
        [],
        ["model", "raw session", "open+verify, cache empty", "open+verify, cached",
         "whole `load()`, cached"],
        [[r["name"], i["raw_session_ms"], i["open_verify_uncached_ms"],
          i["open_verify_cached_ms"], i["load_total_cached_ms"]] for r, i in steady],
    )  # fmt: skip
    out += ["## Fresh process, edgeort cold start by phase (bytecode cached; median ms)", ""]
    for r in models:
        steps = ", ".join(f"{k} {v}" for k, v in r["fresh_process_phases_ms"].items())
        out.append(f"- {r['name']}: {steps}")
    return [*out, ""]


def _baseline_lines(data: dict[str, Any]) -> list[str]:
    label = data.get("baseline")
    rows = []
    for r in data["models"]:
        ab = r.get("before_after")
        if not ab:
            continue
        rows.append([r["name"], "fresh process with imports", ab["before_ms"], ab["after_ms"],
                     ab["saved_ms"], ab["raw_ms"]])  # fmt: skip
        rows.append([r["name"], "first `load()`, imports done", ab["first_before_ms"],
                     ab["first_after_ms"], ab["first_saved_ms"], "-"])  # fmt: skip
    if not rows:
        return []
    intro = [
        f"Before: {label}. Each of {data['models'][0]['before_after']['repeats']} rounds runs",
        "every figure once, in shuffled order (bytecode and verification cached), so load",
        "on this shared machine hits both alike; *saved* is the median of the per-round",
        "differences.",
    ]
    header = ["model", "figure", "before", "after", "saved", "raw ORT (import + session)"]
    return _table("Before and after (interleaved, median ms)", intro, header, rows)


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# edgeort overhead over raw onnxruntime",
        "",
        f"Machine: {m['cpu']} ({m['physical_cores']} physical / {m['logical_cores']} logical"
        f" cores), {m['os']}; Python {m['python']}, onnxruntime {m['onnxruntime']}, numpy"
        f" {m['numpy']}. Generated by `benchmarks/overhead.py` on {data['date']} for code"
        f" {data.get('code', '?')}. A shared,"
        " noisy machine: run at low load average (here {load}); figures are medians.".format(
            load=data.get("load_average", "?")
        ),
        "",
    ]
    lines += _cold_start_lines(data) + _sections(data["models"]) + _baseline_lines(data)
    return "\n".join(lines).rstrip() + "\n"


def _git_head() -> str:
    """The commit measured, ``+changes`` when edgeort's code differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--", "edgeort", "profiles") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--repeats", type=int, default=9, help="fresh processes per figure")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--baseline-code", type=Path, help="a checkout of the code before (for an A/B)"
    )
    parser.add_argument("--baseline-label", default="before", help="what the baseline is")
    parser.add_argument("--code-label", help="what code is measured (default: git HEAD)")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite overhead.md from overhead.json"
    )
    parser.add_argument(
        "--cold-start",
        action="store_true",
        help="measure only the whole-program cold start and add it to overhead.json/.md",
    )
    args = parser.parse_args()
    if args.cold_start:
        from edgeort._fs import atomic_write_text

        work = Path(tempfile.mkdtemp(prefix="edgeort-coldstart-"))
        data = json.loads((args.out / "overhead.json").read_text(encoding="utf-8"))
        before = args.baseline_code.resolve() if args.baseline_code is not None else None
        data["cold_start_run"] = cold_start_run(args.repeats, work, before)
        data["cold_start_run"]["code"] = args.code_label or _git_head()
        if before is not None:
            data["cold_start_run"]["before_label"] = args.baseline_label
        atomic_write_text(args.out / "overhead.json", json.dumps(data, indent=2) + "\n")
        atomic_write_text(args.out / "overhead.md", markdown(data))
        shutil.rmtree(work, ignore_errors=True)
        print("\n".join(_cold_start_lines(data)))
        return
    if args.render_only:
        from edgeort._fs import atomic_write_text

        data = json.loads((args.out / "overhead.json").read_text(encoding="utf-8"))
        atomic_write_text(args.out / "overhead.md", markdown(data))
        return
    work = Path(tempfile.mkdtemp(prefix="edgeort-overhead-"))
    transformer, transformer_name = transformer_model(work)
    cases = [
        ("examples/digits CNN", DIGITS, 4000, 5),
        (transformer_name, transformer, 60, 5),
    ]
    repeats = 3 if args.quick else args.repeats
    load_average = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    results = []
    for name, model_file, calls, rounds in cases:
        if args.quick:
            calls = max(10, calls // 4)
        bundle = make_bundle(model_file, work / f"{model_file.parent.name}.ortpackage")
        print(f"{name}: per-run ...", file=sys.stderr)
        per = per_run(bundle, calls, rounds)
        print(f"{name}: cold start ...", file=sys.stderr)
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
                "first_call": first_call(bundle, model_file, repeats, work),
                "fresh_process": fresh_process(bundle, model_file, repeats, work, pyc=True),
                "fresh_process_source": fresh_process(bundle, model_file, repeats, work, pyc=False),
                "in_process": in_process(bundle, model_file, repeats, work),
                "fresh_process_phases_ms": phases(bundle, repeats, work),
            }
        )
        if args.baseline_code is not None:
            before = args.baseline_code.resolve()
            results[-1]["before_after"] = interleaved(bundle, model_file, repeats, work, before)
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "code": args.code_label or _git_head(),
        "load_average": load_average,
        "machine": machine(),
        "models": results,
    }
    if args.baseline_code is not None:
        data["baseline"] = args.baseline_label
    args.out.mkdir(parents=True, exist_ok=True)
    from edgeort._fs import atomic_write_text

    atomic_write_text(args.out / "overhead.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(args.out / "overhead.md", markdown(data))
    shutil.rmtree(work, ignore_errors=True)
    print(markdown(data))


if __name__ == "__main__":
    main()
