"""The worker: runs jobs inside one ONNX Runtime environment (a target runtime, or a
device of the farm), for a client in another process.

Protocol (version :data:`PROTOCOL`; docs/runtimes.md has the full description):

* ``python -m edgeort.runtimes.worker`` reads one JSON object per line on stdin and
  writes one JSON object per line on stdout. Everything else (logs, native libraries
  printing to file descriptor 1) goes to stderr.
* First line out: the hello, ``{"hello": {"protocol": 1, "edgeort": ..., "onnxruntime":
  ..., "ort_build": ..., "python": ...}}``.
* Each request ``{"id": ..., "job": "info" | "run" | "bench" | "doctor" | "shutdown",
  ...}`` gets
  ``{"id": ..., "ok": true, "result": {...}}`` or ``{"id": ..., "ok": false, "error":
  {"type": "ProviderError", "message": ..., "exit_code": 9}}``.
* Arrays travel as ``.npy`` files named in the request (inputs) or written into the
  request's ``out_dir`` (outputs); never inside the JSON.

The jobs are plain functions: :func:`run_job` (``request -> result``, raising
:class:`~edgeort.errors.EdgeortError`) and :func:`handle` (``request -> envelope``,
never raising). A bundle is always opened and run with :func:`edgeort.load`, exactly as
on a device. This module imports only the light runtime (no onnx, no click).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgeort.errors import EdgeortError, UsageError

__all__ = ["JOBS", "PROTOCOL", "handle", "hello", "main", "run_job"]

log = logging.getLogger(__name__)

PROTOCOL = 1
ORT_BUILDS = (  # distributions that provide the ``onnxruntime`` module
    "onnxruntime",
    "onnxruntime-openvino",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-qnn",
    "onnxruntime-training",
)


def ort_build() -> tuple[str, str]:
    """(distribution, version) of the installed ``onnxruntime`` module, e.g.
    ``("onnxruntime-openvino", "1.24.1")``."""
    from importlib import metadata

    import onnxruntime as ort

    for name in ORT_BUILDS:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if name == "onnxruntime-qnn" and not version.startswith("1."):
            continue  # onnxruntime-qnn 2.x is a plugin beside stock onnxruntime
        return name, version
    return "onnxruntime", str(ort.__version__)


def build_side_modules() -> dict[str, list[str]]:
    """``onnx``/``click`` in this process: ``imported`` (must stay empty: the device side
    never imports them) and ``installed`` (empty in a runtime made by edgeort)."""
    from importlib.util import find_spec

    names = ("onnx", "click")
    return {
        "imported": [m for m in names if m in sys.modules],
        "installed": [m for m in names if find_spec(m) is not None],
    }


def hello() -> dict[str, Any]:
    import onnxruntime as ort

    import edgeort

    build, build_version = ort_build()
    return {
        "protocol": PROTOCOL,
        "edgeort": edgeort.__version__,
        "onnxruntime": str(ort.__version__),
        "ort_build": build,
        "ort_build_version": build_version,
        "python": platform.python_version(),
        "pid": os.getpid(),
    }


# -- jobs ------------------------------------------------------------------------------


def _info(request: Mapping[str, Any]) -> dict[str, Any]:
    """The environment: ORT build, EPs, devices, the probe's notes."""
    import onnxruntime as ort

    from edgeort.hardware import probe

    device = probe()
    out = hello()
    out.update(
        providers=list(ort.get_available_providers()),
        ep_devices=sorted({f"{d.ep_name}:{d.device_type}" for d in device.ep_devices}),
        build_devices=_build_devices(),
        plugins=[
            {"ep": p.ep_name, "package": p.package, "version": p.version, "error": p.error}
            for p in device.plugin_eps
        ],
        cpu_vendor=device.cpu_vendor,
        cpu_model=device.cpu_model,
        arch=device.arch,
        notes=list(device.notes),
        build_side_modules=build_side_modules(),
    )
    return out


def _build_devices() -> dict[str, list[str]]:
    """Devices of EPs compiled into this ORT build that list them (OpenVINO classic)."""
    from edgeort.hardware.ep import builtin_device_ids

    out = {}
    for ep, ids in builtin_device_ids().items():
        out[ep] = list(ids)
    return out


def _feeds(inputs: Mapping[str, Any], samples: int | None) -> tuple[list[dict[str, Any]], int]:
    """Per-sample feeds from ``{name: {"npy": path, "stacked": bool}}``: a stacked array
    gives ``arr[i]``, an unstacked one ``arr[i:i+1]`` (the first axis is the batch)."""
    arrays = {}
    stacked = {}
    for name, spec in inputs.items():
        if not isinstance(spec, Mapping) or "npy" not in spec:
            raise UsageError(f"input {name!r}: expected {{'npy': path, 'stacked': bool}}")
        try:
            arrays[name] = np.load(spec["npy"], allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"input {name!r}: cannot read {spec['npy']}: {exc}") from None
        stacked[name] = bool(spec.get("stacked", False))
        if spec.get("whole"):  # the array is one feed as it is
            arrays[name], stacked[name] = arrays[name][None], True
    count = samples if samples is not None else min(len(a) for a in arrays.values())
    feeds = [
        {n: (a[i] if stacked[n] else a[i : i + 1]) for n, a in arrays.items()} for i in range(count)
    ]
    return feeds, count


def _stack(chunks: Sequence[np.ndarray]) -> np.ndarray:
    if all(c.ndim >= 1 and c.shape[0] == 1 for c in chunks):
        return np.concatenate(chunks, axis=0)
    return np.stack(chunks, axis=0)


def _random_feed(model: Any) -> dict[str, np.ndarray]:
    """One feed for ``model``'s inputs by :mod:`edgeort.feeds`' rule (dynamic dims 1)."""
    from edgeort.feeds import random_feeds

    return random_feeds(model.inputs)


def _times(model: Any, feed: Mapping[str, Any], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        model.run(feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.run(feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80] or "output"


def _load(request: Mapping[str, Any]) -> Any:
    import edgeort

    bundle = request.get("bundle")
    if not isinstance(bundle, str):
        raise UsageError("request field 'bundle': expected the path of a bundle")
    providers = request.get("providers")
    return edgeort.load(
        bundle,
        profile=request.get("profile"),
        providers=list(providers) if providers is not None else None,
        strict=bool(request.get("strict", False)),
        threads=request.get("threads"),
    )


def _placement(model: Any) -> dict[str, int]:
    try:
        counts: dict[str, int] = model.placement().counts
    except EdgeortError:
        return {}
    return counts


def _run(request: Mapping[str, Any]) -> dict[str, Any]:
    """Load the bundle with :func:`edgeort.load`, run every sample of ``inputs`` (or one
    random feed), write the stacked outputs to ``out_dir``; time ``latency`` runs."""
    model = _load(request)
    build, build_version = ort_build()
    result: dict[str, Any] = {
        "variant": model.variant.name,
        "profile": model.variant.profile,
        "providers": model.providers,
        "ep": model.providers[0] if model.providers else None,
        "reasons": model.reasons,
        "placement": _placement(model),
        "onnxruntime": hello()["onnxruntime"],
        "ort_build": build,
        "ort_build_version": build_version,
    }
    inputs = request.get("inputs")
    if inputs:
        feeds, count = _feeds(inputs, request.get("samples"))
    else:
        feeds, count = [_random_feed(model)], 1
    out_dir = request.get("out_dir")
    if inputs and out_dir:
        per_output: dict[str, list[np.ndarray]] = {}
        for feed in feeds:
            for name, value in model.run(feed).items():
                per_output.setdefault(name, []).append(np.asarray(value))
        written = {}
        for index, (name, chunks) in enumerate(per_output.items()):
            path = Path(out_dir) / f"{index}-{_safe(name)}.npy"
            np.save(path, _stack(chunks), allow_pickle=False)
            written[name] = str(path)
        result["outputs"] = written
    result["samples"] = count
    result["build_side_modules"] = build_side_modules()
    latency = request.get("latency")
    if latency:
        runs = int(latency.get("runs", 20))
        warmup = int(latency.get("warmup", 3))
        feed = feeds[int(latency.get("sample", 0)) % len(feeds)]
        times = _times(model, feed, runs, warmup)
        result["latency"] = {
            "ms_median": statistics.median(times),
            "ms_min": min(times),
            "ms_p90": sorted(times)[max(0, round(0.9 * len(times)) - 1)],
            "runs": runs,
            "warmup": warmup,
            "times_ms": times,
        }
    model.close()
    return result


def _doctor(request: Mapping[str, Any]) -> dict[str, Any]:
    """What this runtime makes of a bundle: the variant ranking (version guard, EP
    availability, fit) and, when one is usable, a run of the picked variant."""
    from edgeort.bundle import open_bundle
    from edgeort.runtime import rank_bundle

    bundle = request.get("bundle")
    if not isinstance(bundle, str):
        raise UsageError("request field 'bundle': expected the path of a bundle")
    opened = open_bundle(bundle)
    ranking = rank_bundle(opened)
    out: dict[str, Any] = {
        "environment": _info(request),
        "variants": [
            {"variant": c.name, "ep": c.variant.ep, "usable": c.usable, "reason": c.reason}
            for c in ranking.choices
        ],
    }
    try:
        out["run"] = _run({**request, "inputs": None, "latency": {"runs": 5, "warmup": 1}})
    except EdgeortError as exc:
        out["run"] = {"error": {"type": type(exc).__name__, "message": str(exc)}}
    return out


def _bench(request: Mapping[str, Any]) -> dict[str, Any]:
    """Latency of every variant this runtime can run (or ``variant``), each loaded with
    :func:`edgeort.load` (``profile=`` its name; ``strict`` as asked, so nodes its EP does
    not take run on the CPU EP and show in ``placement``); one feed from ``inputs``
    (``whole`` arrays) or random values."""
    from edgeort.bundle import open_bundle
    from edgeort.runtime import rank_bundle

    bundle = request.get("bundle")
    if not isinstance(bundle, str):
        raise UsageError("request field 'bundle': expected the path of a bundle")
    ranking = rank_bundle(open_bundle(bundle), profile=request.get("variant"))
    results, skipped = [], {}
    for choice in ranking.choices:
        if not choice.usable:
            skipped[choice.name] = choice.reason
            continue
        try:
            run = _run(
                {
                    **request,
                    "profile": choice.name,
                    "strict": bool(request.get("strict", False)),
                    "out_dir": None,
                    "latency": {
                        "runs": int(request.get("runs", 50)),
                        "warmup": int(request.get("warmup", 5)),
                    },
                }
            )
        except EdgeortError as exc:
            skipped[choice.name] = f"failed: {exc}"
            continue
        results.append({k: run[k] for k in ("variant", "ep", "providers", "placement", "latency")})
    return {"environment": hello(), "results": results, "skipped": skipped}


JOBS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "info": _info,
    "run": _run,
    "bench": _bench,
    "doctor": _doctor,
}


def run_job(request: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job here, in this process; returns its result. Raises
    :class:`~edgeort.errors.UsageError` for an unknown job and any
    :class:`~edgeort.errors.EdgeortError` the job raises."""
    job = request.get("job")
    fn = JOBS.get(str(job))
    if fn is None:
        raise UsageError(f"unknown job {job!r}; jobs: {', '.join(sorted(JOBS))}, shutdown")
    return fn(request)


def handle(request: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`run_job` as a protocol envelope: ``{"id", "ok", "result" | "error"}``."""
    reply: dict[str, Any] = {"id": request.get("id")}
    try:
        reply["result"] = run_job(request)
        reply["ok"] = True
    except EdgeortError as exc:
        reply["ok"] = False
        reply["error"] = exc.to_json()
    except Exception as exc:  # a bug or a library failure: reported, the worker lives on
        log.exception("job %s failed", request.get("job"))
        reply["ok"] = False
        reply["error"] = {
            "type": type(exc).__name__,
            "message": f"{type(exc).__name__}: {exc}",
            "exit_code": 1,
        }
    return reply


def _requests(stream: IO[str]) -> Iterator[dict[str, Any]]:
    for line in stream:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as exc:
            yield {"job": "__bad__", "error": f"not JSON: {exc}"}
            continue
        yield request if isinstance(request, dict) else {"job": "__bad__", "error": "not an object"}


def main() -> int:
    """The worker loop on stdin/stdout (see the module docstring)."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # native code printing to fd 1 must not corrupt the protocol
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, format="edgeort-worker: %(message)s")

    def send(obj: Mapping[str, Any]) -> None:
        channel.write(json.dumps(obj, default=str) + "\n")
        channel.flush()

    send({"hello": hello()})
    for request in _requests(sys.stdin):
        if request.get("job") == "shutdown":
            send({"id": request.get("id"), "ok": True, "result": {}})
            break
        if request.get("job") == "__bad__":
            send({"id": None, "ok": False, "error": UsageError(request["error"]).to_json()})
            continue
        send(handle(request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
