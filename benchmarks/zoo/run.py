"""The real-model zoo: naive fp32, a competent plain-ORT recipe and edgeort, per model.

For every model of :mod:`models` (fetched by ``fetch.py``), in one run:

- **naive fp32**: the wheel's ``.onnx`` in a plain ``onnxruntime.InferenceSession`` with
  default options (CPU EP);
- **plain-ORT recipe**: what a competent user writes without edgeort: for Conv nets
  ``quant_pre_process`` then ``quantize_static`` QDQ, per-channel S8S8, MinMax, Conv only
  (the recipe issue 9 measured at 2.04x on a YOLO detector); for everything else
  ``quantize_dynamic`` per-channel int8 on MatMul with constant weights. Default session
  options;
- **edgeort**: ``edgeort.package(model, ["cpu"], calibration=..., validation=...)`` with
  nothing else (zero-config), then ``edgeort.load(bundle).run(...)``;
- **edgeort tuned**: that bundle after ``edgeort tune`` (:func:`edgeort.measure.tune.tune_target`
  and ``save_tuning``, the code behind the CLI) with the first validation sample as input
  and ``--tune-budget`` seconds, then ``edgeort.load(bundle)`` again, which reads the tune
  cache. The run keeps its whole edgeort cache in a private temporary folder
  (``EDGEORT_CACHE_DIR``): the user's tune cache is neither read nor changed, and the
  untuned bundle is loaded before its tune entry exists. ``--no-tune`` skips this.

Speed: batch 1, the first validation sample, rounds interleaved (naive, recipe, edgeort,
tuned, naive, ...), the median of each; ratios are naive / x. Accuracy: the model family's task
metric (``edgeort.pack.metrics.task_value``) of each against naive fp32 on the validation
data, stateful models run step by step with their state fed back. Then each model is
packaged for ``qnn`` (HTP simulator when ``onnxruntime-qnn`` is installed) and ``nnapi``
(``--elsewhere``; cannot run here: verified on the CPU EP) with the fixed ``--shape``s,
and the outcome is recorded.

    .venv/bin/python benchmarks/zoo/fetch.py
    .venv/bin/python benchmarks/zoo/run.py                 # every model
    .venv/bin/python benchmarks/zoo/run.py orinet --no-mobile
    .venv/bin/python benchmarks/zoo/run.py minilm-l6 --no-mobile --tune-budget 30

Writes ``benchmarks/results/zoo.json`` and ``zoo.md``. Never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from fetch import fetch  # noqa: E402
from models import CALIBRATION, MEASURED, VALIDATION, ZOO, Zoo  # noqa: E402

import edgeort  # noqa: E402
from benchmarks._runner.machine import package_version  # noqa: E402
from edgeort.measure.bench import SETTLE_S  # noqa: E402
from edgeort.pack.family import METRICS, parse_family  # noqa: E402
from edgeort.pack.metrics import task_value  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ROUNDS = 9
RUNS_PER_ROUND = 5  # at least; more for fast models (MIN_ROUND_S)
MIN_ROUND_S = 0.1
NOISE_STEPS = 0.5  # fp32's own metric under +-half a pixel level of input noise
MOBILE_SAMPLES = 4  # validation samples for the qnn/nnapi packaging (the simulator is slow)
MOBILE_TIMEOUT_S = 900
TUNE_BUDGET_S = 25.0  # edgeort tune's search budget per model (--tune-budget)
# (state input, state output) pairs of the zoo's stateful models
STATE = {"silero-vad": (("state", "stateN"),)}

Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _save(arrays: dict[str, np.ndarray], path: Path) -> Path:
    np.savez(path, **arrays)
    return path


def _feeds(arrays: dict[str, np.ndarray], inputs: list[Any]) -> list[dict[str, np.ndarray]]:
    """Per-sample feeds with a batch axis (``edgeort.pack.data``'s convention)."""
    names = [i.name for i in inputs]
    n = len(next(iter(v for k, v in arrays.items() if not k.startswith("__"))))
    rank = {i.name: len(i.shape) for i in inputs}
    out = []
    for s in range(n):
        feed = {}
        for name in names:
            if name not in arrays:
                continue
            arr = arrays[name]
            feed[name] = np.asarray(arr[s : s + 1] if arr.ndim == rank[name] else arr[s])
        out.append(feed)
    return out


def _zero_state(inputs: list[Any], name: str) -> np.ndarray:
    spec = next(i for i in inputs if i.name == name)
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
    return np.zeros(shape, dtype=np.float32)


def run_all(
    run: Runner, arrays: dict[str, np.ndarray], inputs: list[Any], model: str
) -> list[np.ndarray]:
    """Every validation sample, stateful models step by step; per output stacked."""
    pairs = STATE.get(model, ())
    seq = arrays.get("__sequence__")
    outs: list[list[np.ndarray]] = []
    previous: dict[str, np.ndarray] = {}
    for s, feed in enumerate(_feeds(arrays, inputs)):
        for inp, _ in pairs:
            fresh = s == 0 or (seq is not None and seq[s] != seq[s - 1])
            feed[inp] = _zero_state(inputs, inp) if fresh else previous[inp]
        result = run(feed)
        names = run.names  # type: ignore[attr-defined]
        for inp, out in pairs:
            previous[inp] = result[names.index(out)]
        if not outs:
            outs = [[] for _ in result]
        for k, r in enumerate(result):
            outs[k].append(
                np.asarray(r)[0]
                if np.asarray(r).ndim and np.asarray(r).shape[0] == 1
                else np.asarray(r)
            )
    return [np.stack(o) for o in outs]


def sentence_cosine(ref: np.ndarray, got: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Mean and min cosine of mean-pooled (over real tokens) hidden states per sentence."""
    m = mask.astype(np.float64)[..., None]
    r = (ref * m).sum(1) / m.sum(1)
    g = (got * m).sum(1) / m.sum(1)
    cos = (r * g).sum(1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1))
    return {"mean": float(cos.mean()), "min": float(cos.min())}


def plain(path: Path) -> Runner:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return session.run(None, feed)

    run.names = names  # type: ignore[attr-defined]
    run.inputs = session.get_inputs()  # type: ignore[attr-defined]
    return run


def bundle_runner(path: Path) -> tuple[Runner, Any]:
    model = edgeort.load(path)
    names = list(model.output_names) if hasattr(model, "output_names") else None

    def run(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = model.run(feed)
        return [out[n] for n in (names or list(out))]

    if names is None:
        names = [o.name for o in ort.InferenceSession(str(_any_model(path))).get_outputs()]
    run.names = names  # type: ignore[attr-defined]
    return run, model


def _any_model(bundle: Path) -> Path:
    return next(bundle.rglob("*.onnx"))


class _Reader:
    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def recipe(entry: Zoo, fp32: Path, calib: dict[str, np.ndarray], work: Path) -> tuple[Path, str]:
    """The competent plain-ORT recipe (see the module docstring)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / "recipe.onnx"
    ops = {n.op_type for n in onnx.load(str(fp32), load_external_data=False).graph.node}
    family, _ = parse_family(entry.family)
    if "Conv" in ops and family != "encoder":
        pre = work / "recipe.pre.onnx"
        source, per_channel, how = _opset13(fp32, work)
        try:
            cwd = Path.cwd()
            os.chdir(work)  # it leaves sym_shape_infer_temp.onnx files in the cwd
            try:
                quant_pre_process(str(source), str(pre))
            finally:
                os.chdir(cwd)
        except Exception:
            shutil.copyfile(source, pre)
        inputs = ort.InferenceSession(str(pre)).get_inputs()
        feeds = _feeds(calib, inputs)
        for inp, _ in STATE.get(entry.name, ()):
            for f in feeds:
                f[inp] = _zero_state(inputs, inp)
        quantize_static(
            str(pre), str(out), _Reader(feeds), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            per_channel=per_channel, op_types_to_quantize=["Conv"],
        )  # fmt: skip
        scales = "per-channel" if per_channel else "per-tensor"
        return (
            out,
            f"quantize_static QDQ S8S8 {scales} MinMax, Conv only ({how}quant_pre_process)",
        )
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"MatMulConstBOnly": True})  # fmt: skip
    return out, "quantize_dynamic int8 per-channel (MatMul with constant B)"


def _opset13(fp32: Path, work: Path) -> tuple[Path, bool, str]:
    """Per-channel QDQ needs opset 13 (DequantizeLinear's axis): what a competent user
    does with an older model -- ``onnx.version_converter`` to 13, or, when that fails,
    per-tensor scales. (source, per_channel, what was done)."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(fp32))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset >= 13:
        return fp32, True, "after "
    try:
        converted = version_converter.convert_version(model, 13)
        onnx.checker.check_model(converted)
        out = work / "recipe.opset13.onnx"
        onnx.save(converted, str(out))
        ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        return out, True, f"opset {opset} -> 13 by onnx.version_converter, then "
    except Exception as exc:
        say(f"version_converter failed ({type(exc).__name__}: {exc}); per-tensor")
        return fp32, False, f"opset {opset}: version_converter failed, per-tensor; after "


def tune(bundle: Path, feed: dict[str, np.ndarray], work: Path, budget_s: float) -> dict[str, Any]:
    """``edgeort tune BUNDLE --budget S --input NAME=FILE.npy ...`` through its Python API
    (what the CLI calls), saved to the tune cache (this run's private one): the search's
    JSON, with the cache file's settings."""
    from dataclasses import replace

    from edgeort.measure.targets import resolve
    from edgeort.measure.tune import save_tuning, tune_target

    files = {}
    for name, arr in feed.items():
        files[name] = work / f"tune-input-{len(files)}.npy"
        np.save(files[name], np.asarray(arr))
    resolved = resolve(bundle)
    if not resolved.targets or resolved.device is None:
        raise RuntimeError(f"edgeort tune: nothing to tune here ({dict(resolved.skipped)})")
    target = resolved.targets[0]
    result, search = tune_target(
        target, budget_s=budget_s, device=resolved.device, input_files=files
    )
    result = replace(result, cache_path=save_tuning(result, target, resolved.device))
    record = json.loads(Path(str(result.cache_path)).read_text())
    out = result.to_json()
    out.pop("cache", None)  # a temporary folder
    out["saved"] = {
        k: record.get(k)
        for k in ("intra_op_threads", "graph_optimization_level", "execution_mode",
                  "session_options", "provider_options")
    }  # fmt: skip
    # every setting the search measured, fastest first (its group medians, ms): shows
    # whether 1 thread was tried and how it compared under this run's load
    out["measured"] = [{**point, "ms": round(ms, 4)} for point, ms in search.ranked()]
    return out


def _session_settings(model: Any) -> dict[str, Any]:
    """What the session ``edgeort.load`` opened really uses (ORT's own view), and why
    the variant was picked (names the tune cache when it was read)."""
    session = model.session
    opts = session.get_session_options()
    try:
        spin: str | None = opts.get_session_config_entry("session.intra_op.allow_spinning")
    except Exception:  # not set: ORT's default (spinning on)
        spin = None
    picked = next((v for v in model.reasons.values() if v.startswith("picked")), "")
    return {
        "intra_op_threads": opts.intra_op_num_threads,
        "graph_optimization_level": str(opts.graph_optimization_level).split(".")[-1],
        "execution_mode": str(opts.execution_mode).split(".")[-1],
        "spinning": spin,
        "picked": picked,
    }


def speed(runners: dict[str, Runner], feed: dict[str, np.ndarray]) -> tuple[dict[str, float], int]:
    """Median ms per runner over ROUNDS interleaved rounds, and the runs per round: at
    least RUNS_PER_ROUND, and enough that a round of the fastest runner lasts
    MIN_ROUND_S (a sub-millisecond model timed 5 runs a round measures the scheduler:
    one preemption on a busy 2-core machine is worth ten runs)."""
    fastest = float("inf")
    for run in runners.values():
        for _ in range(3):
            start = time.perf_counter()
            run(dict(feed))
            fastest = min(fastest, time.perf_counter() - start)
    runs = max(RUNS_PER_ROUND, math.ceil(MIN_ROUND_S / max(fastest, 1e-6)))
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(ROUNDS):
        for key, run in runners.items():
            # as edgeort.measure.bench.switch_to: the previous runner's thread pool stops
            # spinning, this one's threads wake, before the timed block
            time.sleep(SETTLE_S)
            run(dict(feed))
            start = time.perf_counter()
            for _ in range(runs):
                run(dict(feed))
            times[key].append((time.perf_counter() - start) / runs * 1000)
    return {k: statistics.median(v) for k, v in times.items()}, runs


def _variant(result: Any) -> dict[str, Any]:
    v = result.variants[0]
    acc = v.accuracy
    return {
        "precision": v.precision,
        "metric": acc.get("metric"),
        "value": acc.get("value"),
        "bound": acc.get("bound"),
        "passed": acc.get("passed"),
        "on_ep": acc.get("on_ep"),
        "latency_ms": (v.latency or {}).get("ms_median"),
        "gates": [dict(g) for g in v.gates],
    }


def mobile(
    entry: Zoo, fp32: Path, calib: Path, valid: dict[str, np.ndarray], work: Path
) -> dict[str, Any]:
    """``edgeort package -t qnn`` / ``-t nnapi --elsewhere`` with the fixed shapes, each in
    its own process under MOBILE_TIMEOUT_S (the QNN HTP simulator is slow on big nets)."""
    small = {k: v[:MOBILE_SAMPLES] for k, v in valid.items()}
    vpath = _save(small, work / "mobile_validation.npz")
    out: dict[str, Any] = {}
    for target in ("qnn", "nnapi"):
        say(f"{entry.name}: packaging for {target}")
        cmd = [
            sys.executable, "-m", "edgeort", "package", str(fp32), "-t", target,
            "-o", str(work / f"{target}.ortpackage"), "--calibration", str(calib),
            "--validation", str(vpath), "--no-speed", "--json", "--keep-going",
            *(["--elsewhere"] if target != "qnn" else []),
            *[a for k, v in entry.shapes.items() for a in ("--shape", _shape(k, v))],
            *[a for k, v in entry.freeze.items() for a in ("--freeze", f"{k}={v}")],
        ]  # fmt: skip
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MOBILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            out[target] = {"ok": False, "error": f"not finished in {MOBILE_TIMEOUT_S} s here"}
            continue
        last = {}
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                last = json.loads(line)
        if "result" in last:
            v = last["result"]["variants"][0]
            acc = v["accuracy"]
            out[target] = {
                "ok": True, "precision": v["precision"], "ep": v["ep"],
                "on_ep": acc.get("on_ep"), "on_ep_reason": acc.get("on_ep_reason"),
                "metric": acc.get("metric"), "value": acc.get("value"),
                "passed": acc.get("passed"), "build_s": round(time.perf_counter() - start, 1),
                "ep_refused": (v.get("ep_refused") or {}).get("reason"),
            }  # fmt: skip
        elif "error" in last:
            err = last["error"]
            out[target] = {"ok": False, "error": f"{err['type']}: {err['message']}"[:400]}
        else:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            out[target] = {"ok": False, "error": f"TRACEBACK (exit {proc.returncode}): {tail}"}
    return out


def _shape(name: str, dims: tuple[int, ...]) -> str:
    return f"{name}={','.join(map(str, dims))}"


def one(
    entry: Zoo, work: Path, do_mobile: bool, mobile_only: bool = False, tune_budget: float = 0.0
) -> dict[str, Any]:
    fp32 = fetch(entry)
    family, _ = parse_family(entry.family)
    metric = METRICS[family]
    say(f"{entry.name}: data")
    calib, valid = entry.data(CALIBRATION, 0), entry.data(VALIDATION, 1)
    cpath, vpath = _save(calib, work / "calibration.npz"), _save(valid, work / "validation.npz")
    if mobile_only:
        return {"model": entry.name, "mobile": mobile(entry, fp32, cpath, valid, work)}
    row: dict[str, Any] = {
        "model": entry.name, "package": entry.package, "member": entry.member,
        "task": entry.task, "family_expected": entry.family, "metric": metric,
        **({"measured": MEASURED[entry.name]} if entry.name in MEASURED else {}),
    }  # fmt: skip
    naive = plain(fp32)
    inputs = naive.inputs  # type: ignore[attr-defined]
    say(f"{entry.name}: edgeort package -t cpu")
    start = time.perf_counter()
    events: list[str] = []
    try:
        result = edgeort.package(fp32, ["cpu"], output=work / "cpu.ortpackage",
                                 calibration=cpath, validation=vpath,
                                 on_event=lambda e: events.append(e.message))  # fmt: skip
    except edgeort.EdgeortError as exc:
        row["edgeort_error"] = f"{type(exc).__name__}: {exc}"[:600]
        result = None
    row["edgeort_build_s"] = round(time.perf_counter() - start, 1)
    row["family_detected"] = next((m for m in events if "model, " in m), "")
    say(f"{entry.name}: plain-ORT recipe")
    start = time.perf_counter()
    try:
        rpath, row["recipe"] = recipe(entry, fp32, calib, work)
        competent: Runner | None = plain(rpath)
    except Exception as exc:
        row["recipe_error"] = f"{type(exc).__name__}: {exc}"[:300]
        competent = None
    row["recipe_build_s"] = round(time.perf_counter() - start, 1)
    runners: dict[str, Runner] = {"naive": naive}
    if competent is not None:
        runners["recipe"] = competent
    if result is not None:
        runners["edgeort"], plain_model = bundle_runner(result.path)
        row["edgeort"] = _variant(result)
        row["edgeort_session"] = _session_settings(plain_model)
    feed = _feeds(valid, inputs)[0]
    for inp, _ in STATE.get(entry.name, ()):
        feed[inp] = _zero_state(inputs, inp)
    if result is not None and tune_budget:
        say(f"{entry.name}: edgeort tune (budget {tune_budget:g} s)")
        start = time.perf_counter()
        try:
            row["tune"] = tune(result.path, feed, work, tune_budget)
            runners["tuned"], tuned_model = bundle_runner(result.path)
            row["tuned_session"] = _session_settings(tuned_model)
        except Exception as exc:
            traceback.print_exc()
            row["tune_error"] = f"{type(exc).__name__}: {exc}"[:400]
        row["tune_s"] = round(time.perf_counter() - start, 1)
    say(f"{entry.name}: accuracy ({metric})")
    reference = run_all(naive, valid, inputs, entry.name)
    for key, run in runners.items():
        if key == "naive":
            continue
        got = run_all(run, valid, inputs, entry.name)
        mask = valid.get("attention_mask") if metric == "embedding" else None
        row[f"{key}_{metric}"] = task_value(metric, reference, got, _layout(entry), mask)
        if "attention_mask" in valid:  # an encoder: the sentence embeddings, as it is used
            row[f"{key}_sentence_cosine"] = sentence_cosine(
                reference[0], got[0], valid["attention_mask"]
            )
    floor = noise_floor(naive, valid, inputs, entry, metric, reference)
    if floor is not None:
        row[f"fp32_noise_{metric}"] = floor
    say(f"{entry.name}: speed")
    ms, row["runs_per_round"] = speed(runners, feed)
    row["ms"] = ms
    row["speedup"] = {k: ms["naive"] / v for k, v in ms.items()}
    if do_mobile:
        row["mobile"] = mobile(entry, fp32, cpath, valid, work)
    return row


def noise_floor(
    naive: Runner,
    valid: dict[str, np.ndarray],
    inputs: list[Any],
    entry: Zoo,
    metric: str,
    reference: list[np.ndarray],
) -> float | None:
    """The task metric of fp32 itself on images shifted by rounding-level noise
    (uniform +-NOISE_STEPS of one pixel level: the input's range / 255), against fp32 on
    the clean images: how much of the metric's bound the model's own answers move for an
    invisible change (another decoder or resizer). None for inputs that are not images."""
    images = [
        i.name for i in inputs
        if len(i.shape) == 4 and i.type == "tensor(float)" and i.name in valid
    ]  # fmt: skip
    if not images:
        return None
    rng = np.random.default_rng(0)
    noisy = dict(valid)
    for name in images:
        arr = valid[name]
        step = float(arr.max() - arr.min()) / 255
        noise = rng.uniform(-NOISE_STEPS * step, NOISE_STEPS * step, arr.shape)
        noisy[name] = (arr + noise).astype(arr.dtype)
    got = run_all(naive, noisy, inputs, entry.name)
    return task_value(metric, reference, got, _layout(entry))


def _layout(entry: Zoo) -> str | None:
    return parse_family(entry.family)[1]


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        vnni = "avx512_vnni" in flags
    except OSError:
        vnni = False
    versions = {"onnxruntime": ort.__version__, "edgeort": edgeort.__version__}
    qnn = package_version("onnxruntime-qnn")
    if qnn is not None:
        versions["onnxruntime-qnn"] = qnn
    return {
        "cpu": cpu,
        "avx512_vnni": vnni,
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        **versions,
    }


def _with_earlier(rows: list[dict[str, Any]], mobile_file: Path) -> list[dict[str, Any]]:
    """These ``--mobile-only`` rows, and the earlier run's rows of the other models (a
    run of some models replaces only theirs), in zoo order."""
    fresh = {r["model"]: r for r in rows}
    earlier = {}
    if mobile_file.exists():
        earlier = {r["model"]: r for r in json.loads(mobile_file.read_text())["rows"]}
    both = {**earlier, **fresh}
    return [both[e.name] for e in ZOO if e.name in both]


def _merge_mobile(rows: list[dict[str, Any]], mobile_file: Path, *, replace: bool) -> None:
    """Rows of a separate ``--mobile-only`` run join these; with ``replace`` they win over
    the qnn/nnapi entries the rows carry (merged from an earlier zoo-mobile.json)."""
    if not mobile_file.exists():
        return
    extra = {r["model"]: r.get("mobile") for r in json.loads(mobile_file.read_text())["rows"]}
    for row in rows:
        if (replace or "mobile" not in row) and extra.get(row["model"]):
            row["mobile"] = extra[row["model"]]


def main() -> None:
    global MOBILE_TIMEOUT_S
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="*")
    parser.add_argument("--no-mobile", action="store_true", help="skip qnn/nnapi packaging")
    parser.add_argument(
        "--mobile-only", action="store_true", help="only qnn/nnapi, into zoo-mobile.json"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--mobile-timeout", type=int, default=MOBILE_TIMEOUT_S,
        help="seconds per qnn/nnapi packaging (the QNN HTP simulator is slow on big nets)",
    )  # fmt: skip
    parser.add_argument(
        "--report-only", action="store_true",
        help="rewrite zoo.md from zoo.json (+ zoo-mobile.json, and the notes of models.py) "
        "without running anything",
    )  # fmt: skip
    parser.add_argument(
        "--tune-budget", type=float, default=TUNE_BUDGET_S,
        help="seconds of edgeort tune's search per model for the 'tuned' column",
    )  # fmt: skip
    parser.add_argument("--no-tune", action="store_true", help="no 'edgeort tune' column")
    args = parser.parse_args()
    MOBILE_TIMEOUT_S = args.mobile_timeout
    if args.tune_budget <= 0:
        parser.error(f"--tune-budget {args.tune_budget}: expected a positive number of seconds")
    tune_budget = 0.0 if args.no_tune or args.mobile_only else args.tune_budget
    if args.report_only:
        data = json.loads((args.out / "zoo.json").read_text())
        _merge_mobile(data["rows"], args.out / "zoo-mobile.json", replace=True)
        for row in data["rows"]:  # the 'Why, measured' notes are prose kept in models.py
            if row.get("model") in MEASURED:
                row["measured"] = MEASURED[row["model"]]
        (args.out / "zoo.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
        from report import markdown

        (args.out / "zoo.md").write_text(markdown(data))
        return
    logging.basicConfig(level=logging.WARNING)
    # A private edgeort cache for the whole run: the tune entries written here never reach
    # the user's cache, and no entry of the user's can make the untuned column tuned.
    private_cache = Path(tempfile.mkdtemp(prefix="zoo-edgeort-cache-"))
    os.environ["EDGEORT_CACHE_DIR"] = str(private_cache)
    try:
        _run(args, tune_budget)
    finally:
        shutil.rmtree(private_cache, ignore_errors=True)


def _run(args: argparse.Namespace, tune_budget: float) -> None:
    host = machine()  # load average before the first model
    rows = []
    for entry in ZOO:
        if args.models and entry.name not in args.models:
            continue
        with tempfile.TemporaryDirectory(prefix=f"zoo-{entry.name}-") as tmp:
            try:
                rows.append(
                    one(entry, Path(tmp), not args.no_mobile, args.mobile_only, tune_budget)
                )
            except Exception as exc:
                traceback.print_exc()
                rows.append(
                    {
                        "model": entry.name,
                        "package": entry.package,
                        "error": f"{type(exc).__name__}: {exc}"[:400],
                    }
                )
            say(f"{entry.name}: {json.dumps(rows[-1].get('speedup'))}")
            if args.mobile_only:  # written as it goes: the simulator may outlast the session
                args.out.mkdir(parents=True, exist_ok=True)
                partial = {"rows": _with_earlier(rows, args.out / "zoo-mobile.json")}
                (args.out / "zoo-mobile.json").write_text(json.dumps(partial, indent=1) + "\n")
    data = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": host,
            "rounds": ROUNDS, "runs_per_round": RUNS_PER_ROUND, "min_round_s": MIN_ROUND_S,
            "tune_budget_s": tune_budget or None, "rows": rows}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    if args.mobile_only:
        data["rows"] = _with_earlier(rows, args.out / "zoo-mobile.json")
        (args.out / "zoo-mobile.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
        return
    _merge_mobile(rows, args.out / "zoo-mobile.json", replace=args.no_mobile)
    (args.out / "zoo.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    from report import markdown

    (args.out / "zoo.md").write_text(markdown(data))
    print((args.out / "zoo.md").read_text())


if __name__ == "__main__":
    main()
