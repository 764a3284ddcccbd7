"""The farm's job functions: plain edgeort functions that a worker runs.

A farm worker runs only the functions named in :data:`JOBS` (``edgeort.farm.worker``
refuses any other task), and the client submits them by reference (module and name),
never as lambdas or closures. Arguments are plain data: strings, numbers and
``{relative path: bytes}`` trees (:mod:`edgeort.farm._tree`).

Bundles travel with their digest (the sha256 of ``manifest.json``, which pins
``component.json`` and so every file's size and sha256). A worker checks that digest and
then opens the bundle with the verifying reader ``edgeort.load()`` uses
(:func:`edgeort.bundle.open_bundle`) before anything runs. Models travel with their
sha256 and are checked the same way.

Each job returns a JSON-able dict with ``"ok"``. An :class:`~edgeort.errors.EdgeortError`
(bad data, a gate no variant passes) is returned as ``{"ok": False, "error": {...}}``:
retrying it elsewhere would fail the same way. Anything else raises, so Dask retries it.

These functions import no Dask: the same calls can run in a plain process (the tests and
the target-runtime worker protocol do).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeort.errors import EdgeortError, IntegrityError
from edgeort.farm._tree import Tree, write_tree

__all__ = ["JOBS", "bench_job", "describe_job", "package_job", "worker_name"]

log = logging.getLogger(__name__)

JOBS = ("bench_job", "describe_job", "package_job")
MANIFEST = "manifest.json"


def manifest_digest(tree: Mapping[str, bytes]) -> str:
    """The digest a bundle travels with: the sha256 of its ``manifest.json``."""
    return hashlib.sha256(tree[MANIFEST]).hexdigest()


def worker_name() -> str:
    """The Dask worker's name when running inside one, else this host's name."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        import platform

        return platform.node()


@functools.cache
def _device() -> Any:
    from edgeort.hardware import probe

    return probe()


def _error(exc: EdgeortError) -> dict[str, Any]:
    return {
        "ok": False,
        "worker": worker_name(),
        "error": exc.to_json(),
    }


def describe_job() -> dict[str, Any]:
    """This worker's probe summary (:func:`edgeort.farm.resources.summary`)."""
    from edgeort.farm.resources import summary

    return {"ok": True, "worker": worker_name(), "summary": summary(_device())}


def _unpack_bundle(tree: Mapping[str, bytes], manifest_sha256: str, dest: Path) -> Any:
    from edgeort.bundle import open_bundle

    got = hashlib.sha256(tree.get(MANIFEST, b"")).hexdigest()
    if got != manifest_sha256:
        raise IntegrityError(
            f"received bundle: {MANIFEST} sha256 {got} differs from the digest sent with it "
            f"({manifest_sha256})",
            path=dest,
        )
    write_tree(tree, dest)
    return open_bundle(dest)  # verifies every file against the manifest chain


def bench_job(
    tree: Tree,
    manifest_sha256: str,
    variant: str,
    *,
    runs: int | None = 50,
    warmup: int = 5,
    duration: float | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Benchmark ``variant`` of the bundle ``tree`` on this device; one result row."""
    import onnxruntime as ort

    from edgeort.measure.bench import bench_target
    from edgeort.measure.targets import Knobs, resolve
    from edgeort.runtime.tuning import device_fingerprint

    try:
        with tempfile.TemporaryDirectory(prefix="edgeort-farm-bench-") as tmp:
            dest = Path(tmp) / "bundle.ortpackage"
            t0 = time.perf_counter()
            _unpack_bundle(tree, manifest_sha256, dest)
            verify_ms = (time.perf_counter() - t0) * 1000.0
            device = _device()
            resolved = resolve(dest, variant=variant, device=device)
            base = {
                "ok": True,
                "worker": worker_name(),
                "device": f"{device.cpu_model} ({device.os} {device.arch})",
                "device_fingerprint": device_fingerprint(device),
                "variant": variant,
                "ort_version": ort.__version__,
                "ort_build": ort.get_build_info() if hasattr(ort, "get_build_info") else "",
                "verify_ms": round(verify_ms, 3),
            }
            if not resolved.targets:
                return {**base, "ok": False, "skipped": resolved.skipped.get(variant, "")}
            target = resolved.targets[0]
            result = bench_target(
                target, knobs=Knobs(threads=threads), warmup=warmup, runs=runs, duration=duration
            )
    except EdgeortError as exc:
        return {**_error(exc), "variant": variant}
    s = result.summary
    return {
        **base,
        "ep": result.ep,
        "simulated": result.simulated,
        "ep_version": _ep_version(target.variant),
        "settings": dict(result.knobs),
        "runs": s.n,
        "p50_ms": round(s.median_ms, 4),
        "p95_ms": round(s.p95_ms, 4),
        "p99_ms": round(s.p99_ms, 4),
        "load_ms": round(result.session_create_ms, 3),
        "peak_rss_mb": round(result.peak_rss_mb, 2),
    }


def _ep_version(variant: Any) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(variant.ep_package)
    except (importlib.metadata.PackageNotFoundError, AttributeError, ValueError):
        return None


def _data_path(payload: Mapping[str, Any] | None, dest: Path) -> Path | None:
    """A calibration/validation payload ``{"name": str, "tree": Tree}`` unpacked."""
    if not payload:
        return None
    write_tree(payload["tree"], dest)
    return dest / str(payload["name"])


def package_job(request: Mapping[str, Any], model_tree: Tree) -> dict[str, Any]:
    """Package one model for one target on this worker; returns the bundle as a tree.

    ``model_tree``: the model file and its external-data files. ``request``:
    ``model_name``, ``model_sha256``, ``target`` (a profile name), ``profiles`` (tree of
    extra profile files, may be empty), ``calibration``/``validation`` (``{"name",
    "tree"}`` or None), ``shapes``, ``max_drop``, ``measure_speed``, and optionally
    ``state`` (``{input: output}``, ``{}`` for none, None to detect), ``family``, ``metric``
    (a name), ``name``, ``version``, ``min_ort``, ``freeze``: passed to
    :func:`edgeort.package` as is.
    """
    from edgeort.farm._tree import read_tree
    from edgeort.pack import package

    t0 = time.perf_counter()
    events: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="edgeort-farm-pack-") as tmp:
            root = Path(tmp)
            model = write_tree(model_tree, root / "model") / request["model_name"]
            got = hashlib.sha256(model.read_bytes()).hexdigest()
            if got != request["model_sha256"]:
                raise IntegrityError(
                    f"received model {request['model_name']}: sha256 {got} differs from the "
                    f"digest sent with it ({request['model_sha256']})",
                    path=model,
                )
            profiles = request.get("profiles") or {}
            profile_files = sorted(write_tree(profiles, root / "profiles").iterdir())
            out = root / "out" / f"{model.stem or 'model'}.ortpackage"
            package(
                model,
                [request["target"]],
                output=out,
                calibration=_data_path(request.get("calibration"), root / "calibration"),
                validation=_data_path(request.get("validation"), root / "validation"),
                shapes=request.get("shapes") or None,
                max_drop=request.get("max_drop"),
                profiles=[*profile_files] or None,
                measure_speed=bool(request.get("measure_speed", True)),
                here=False,
                state=request.get("state"),
                family=request.get("family"),
                metric=request.get("metric"),
                name=request.get("name"),
                version=request.get("version"),
                min_ort=request.get("min_ort"),
                freeze=request.get("freeze") or None,
                on_event=lambda e: events.append(e.to_json()["event"]),
            )
            tree = read_tree(out)
    except EdgeortError as exc:
        return _error(exc)
    return {
        "ok": True,
        "worker": worker_name(),
        "tree": tree,
        "manifest_sha256": manifest_digest(tree),
        "seconds": round(time.perf_counter() - t0, 3),
        "warnings": [e["message"] for e in events if e["kind"] == "warning"],
    }
