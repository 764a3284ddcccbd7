"""The submitting side: list the farm, benchmark a bundle on it, package on it.

Every job is one of :mod:`edgeort.farm.jobs`' functions, submitted by reference with
plain-data arguments. Results come back as data; bundles are written only here, through
the bundle writer, and only when every job of that bundle succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeort.errors import FarmError, UsageError
from edgeort.farm import jobs
from edgeort.farm._tree import read_tree, write_tree
from edgeort.farm.resources import BUILD, TIMING, ep_resource, profile_resource

__all__ = [
    "FarmBenchReport",
    "FarmPackageReport",
    "FarmReportError",
    "JobEvent",
    "bundle_paths",
    "connect",
    "farm_bench",
    "farm_package",
    "list_workers",
]

log = logging.getLogger(__name__)

DEFAULT_RETRIES = 2


@contextlib.contextmanager
def connect(address: str, *, security: Any = None, timeout: float = 10.0) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``address`` (``HOST:PORT`` or with a
    scheme), closed on exit. An unreachable scheduler is a :class:`FarmError`."""
    from distributed import Client

    from edgeort.farm.security import address_with_scheme

    full = address_with_scheme(address, security)
    try:
        client = Client(  # type: ignore[no-untyped-call]
            full, security=security, timeout=timeout, set_as_default=False
        )
    except (OSError, TimeoutError) as exc:
        raise FarmError(
            f"cannot reach the farm scheduler at {full} within {timeout:g} s: {exc}",
            address=full,
        ) from None
    import dask

    try:
        # Bundles and models travel inside their tasks on purpose (see farm_package).
        with dask.config.set({"distributed.admin.large-graph-warning-threshold": "4GiB"}):
            yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=5)  # type: ignore[no-untyped-call]


def list_workers(client: Any) -> list[dict[str, Any]]:
    """Every worker: address, name, threads, resources and its probe summary."""
    from edgeort.farm.worker import METRIC

    info = client.scheduler_info(n_workers=-1)
    out = []
    for addr, w in sorted(info.get("workers", {}).items()):
        summary = (w.get("metrics") or {}).get(METRIC)
        out.append(
            {
                "address": addr,
                "name": str(w.get("name", addr)),
                "nthreads": w.get("nthreads"),
                "resources": dict(w.get("resources") or {}),
                "summary": summary,
                "edgeort": summary is not None,
            }
        )
    return out


@dataclass(frozen=True, slots=True)
class JobEvent:
    """Progress of one farm job: ``kind`` is queued | done | failed | retry."""

    kind: str
    job: str
    message: str
    done: int
    total: int
    worker: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_event": {
                "kind": self.kind, "job": self.job, "message": self.message,
                "done": self.done, "total": self.total, "worker": self.worker,
            }
        }  # fmt: skip


OnJob = Callable[[JobEvent], None]


def _wait(
    client: Any, futures: Mapping[Any, str], timeout: float | None, on_job: OnJob | None
) -> dict[str, Any]:
    """Wait for every future; job name -> its result dict or the exception it raised."""
    from distributed import as_completed

    total = len(futures)
    results: dict[str, Any] = {}
    pending = dict(futures)
    try:
        done = as_completed(list(futures), loop=client.loop, timeout=timeout)  # type: ignore[no-untyped-call]
        for fut in done:
            name = pending.pop(fut)
            try:
                res = fut.result()
            except Exception as exc:  # the job raised on every try, or its workers died
                res = exc
            results[name] = res
            if on_job is not None:
                on_job(_event(name, res, len(results), total))
    except TimeoutError:
        names = ", ".join(sorted(pending.values()))
        raise FarmError(
            f"farm jobs not finished after {timeout:g} s: {names} (no worker could run them, "
            "or they are still running)",
            job=names,
        ) from None
    finally:
        client.cancel(list(futures))
    return results


def _event(name: str, res: Any, done: int, total: int) -> JobEvent:
    if isinstance(res, Exception):
        return JobEvent("failed", name, f"{type(res).__name__}: {res}", done, total)
    worker = res.get("worker")
    if res.get("ok"):
        secs = res.get("seconds")
        took = f" in {secs:.1f} s" if isinstance(secs, (int, float)) else ""
        return JobEvent("done", name, f"done on {worker}{took}", done, total, worker)
    why = res.get("skipped") or (res.get("error") or {}).get("message", "failed")
    return JobEvent("failed", name, f"on {worker}: {why}", done, total, worker)


# -- bench -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FarmBenchReport:
    path: Path
    rows: tuple[dict[str, Any], ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # variant -> why no worker
    merged: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "rows": [dict(r) for r in self.rows],
            "skipped": dict(self.skipped),
            "merged": str(self.merged) if self.merged else None,
        }


def farm_bench(
    client: Any,
    path: str | Path,
    *,
    variant: str | None = None,
    per_profile: int | None = None,
    runs: int | None = 50,
    warmup: int = 5,
    duration: float | None = None,
    threads: int | None = None,
    timeout: float | None = None,
    merge: bool = False,
    on_job: OnJob | None = None,
) -> FarmBenchReport:
    """Benchmark each variant of the bundle at ``path`` on every worker whose device
    fits its profile (the worker advertises ``profile:<name>``), or on the first
    ``per_profile`` of them by name. With ``merge`` the rows go into the bundle's
    ``measurements`` (:func:`edgeort.farm.merge.merge_measurements`)."""
    from edgeort.bundle import open_bundle

    path = Path(path)
    if per_profile is not None and per_profile < 1:
        raise UsageError(
            f"--per-profile {per_profile}: expected at least 1", option="--per-profile"
        )
    bundle = open_bundle(path)  # verified here before anything travels
    variants = [bundle.variant(variant)] if variant else list(bundle.variants)
    tree = read_tree(bundle.root)
    digest = jobs.manifest_digest(tree)
    workers = [w for w in list_workers(client) if w["edgeort"]]
    skipped: dict[str, str] = {}
    plan: list[tuple[str, str, str]] = []  # (variant, worker address, worker name)
    for v in variants:
        fit = [w for w in workers if w["resources"].get(profile_resource(v.profile))]
        fit.sort(key=lambda w: w["name"])
        if per_profile is not None:
            fit = fit[:per_profile]
        if not fit:
            skipped[v.name] = f"no worker of the farm fits profile {v.profile}"
        plan += [(v.name, w["address"], w["name"]) for w in fit]
    rows: list[dict[str, Any]] = []
    if plan:
        payload = tree  # inline in each task, as the model trees of package jobs
        futures = {}
        for vname, addr, wname in plan:
            fut = client.submit(
                jobs.bench_job, payload, digest, vname,
                runs=runs, warmup=warmup, duration=duration, threads=threads,
                workers=[addr], allow_other_workers=False, resources={TIMING: 1}, pure=False,
                key=f"edgeort-bench-{vname}-{wname}-{time.time_ns()}",
            )  # fmt: skip
            futures[fut] = f"{vname} on {wname}"
            if on_job is not None:
                on_job(JobEvent("queued", futures[fut], "queued", 0, len(plan), wname))
        results = _wait(client, futures, timeout, on_job)
        for (vname, _addr, wname), name in zip(plan, futures.values(), strict=True):
            res = results[name]
            if isinstance(res, Exception):
                res = {"ok": False, "worker": wname, "variant": vname,
                       "error": {"type": type(res).__name__, "message": str(res)}}  # fmt: skip
            rows.append(res)
    rows.sort(key=lambda r: (str(r.get("variant")), str(r.get("worker"))))
    merged = None
    if merge and any(r.get("ok") for r in rows):
        from edgeort.farm.merge import merge_measurements

        merged = merge_measurements(path, rows)
    return FarmBenchReport(path, tuple(rows), skipped, merged)


# -- package -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FarmPackageReport:
    bundles: tuple[Path, ...]
    jobs: tuple[dict[str, Any], ...]  # name, model, target, worker, ok, routed, ...
    failed: Mapping[str, str] = field(default_factory=dict)  # job name -> why

    def to_json(self) -> dict[str, Any]:
        return {
            "bundles": [str(p) for p in self.bundles],
            "jobs": [dict(j) for j in self.jobs],
            "failed": dict(self.failed),
        }


def _data_payload(path: str | Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: no such data file or directory", option="--calibration")
    tree = read_tree(p)
    if p.is_dir():
        tree = {f"{p.name}/{rel}": data for rel, data in tree.items()}
    return {"name": p.name, "tree": tree}


DataArg = str | Path | Mapping[Any, str | Path | None] | None


def _data_for(arg: DataArg, model: Path) -> str | Path | None:
    if not isinstance(arg, Mapping):
        return arg
    for key in (model, str(model)):
        if key in arg:
            return arg[key]
    return None


def _model_payload(path: Path) -> dict[str, Any]:
    """The model file and the external-data files it names (beside it)."""
    import onnx

    from edgeort.errors import ModelError

    if not path.is_file():
        raise ModelError(f"{path}: no such model file", path=path)
    tree = {path.name: path.read_bytes()}
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path}: cannot read the ONNX model: {exc}", path=path) from None
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    for tensor in _get_all_tensors(proto):
        if uses_external_data(tensor):
            loc = next((e.value for e in tensor.external_data if e.key == "location"), None)
            if loc and loc not in tree and (path.parent / loc).is_file():
                tree[loc] = (path.parent / loc).read_bytes()
    return {"name": path.name, "tree": tree, "sha256": hashlib.sha256(tree[path.name]).hexdigest()}


def bundle_paths(models: Sequence[Path], output: Path, as_zip: bool) -> list[Path]:
    """Where each model's bundle goes: ``output`` itself for one model, else
    ``output/<stem>.ortpackage`` (``.zip``)."""
    if len(models) == 1:
        return [output]
    stems = [m.stem for m in models]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise UsageError(
            f"models share a file name stem ({', '.join(dup)}): their bundles would collide "
            f"in {output}",
            option="MODEL",
        )
    suffix = ".zip" if as_zip else ".ortpackage"
    return [output / f"{s}{suffix}" for s in stems]


def _resolve_targets(
    targets: Sequence[str], profile_files: Sequence[Path], here: bool
) -> list[Any]:
    from edgeort.pack.pipeline import _load_profiles, _resolve

    return _resolve(targets, _load_profiles(list(profile_files) or None), here)


def _plain_value(value: Any) -> Any:
    """A ``--freeze`` value as the job request carries it: text as given, else a list."""
    return value if isinstance(value, str) else np.asarray(value).tolist()


def farm_package(
    client: Any,
    models: Sequence[str | Path],
    targets: Sequence[str],
    *,
    output: str | Path,
    calibration: DataArg = None,
    validation: DataArg = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    max_drop: float | None = None,
    zip: bool = False,
    profile_files: Sequence[str | Path] = (),
    measure_speed: bool = True,
    here: bool = True,
    state: Mapping[str, str] | None = None,
    family: str | None = None,
    metric: str | None = None,
    name: str | None = None,
    version: str | None = None,
    min_ort: str | None = None,
    freeze: Mapping[str, Any] | None = None,
    retries: int = DEFAULT_RETRIES,
    timeout: float | None = None,
    on_job: OnJob | None = None,
) -> FarmPackageReport:
    """Package every model for every target on the farm: one job per (model, target).

    Targets resolve here, as a local :func:`edgeort.package` would. A job asks for a
    worker with the build extras and the target's EP (``ep:<EP>``), so the variant is
    verified on its real EP; when no worker has that EP it runs on any build worker and
    is verified on the CPU EP there, and the variant's ``farm`` metadata says why. Each
    model's bundle is written here, only when all its jobs succeeded; a failed job is
    reported by name (:class:`FarmError` after the complete bundles are written).
    ``calibration``/``validation``: one data path for every model, or a mapping from
    model path to its own data (models of a zoo have different inputs).
    ``state``, ``family``, ``metric`` (a name: a callable cannot travel to a worker),
    ``name``, ``version``, ``min_ort`` and ``freeze`` go to each job's :func:`edgeort.package` as
    given. :func:`edgeort.package`'s ``keep_going``, ``runtimes`` and ``allow_install``
    have no farm form: a model with a failed job gets no bundle, and each job is verified
    where the farm routes it.
    """
    from edgeort.bundle import open_bundle
    from edgeort.pack.pipeline import _check_package_id

    if metric is not None and not isinstance(metric, str):
        raise UsageError(
            f"metric {metric!r}: a farm job takes a metric name (top1, boxes, map_iou, ctc, "
            "decision, cosine); a callable cannot travel to a worker",
            option="--metric",
        )
    _check_package_id(name, version)

    model_paths = [Path(m) for m in models]
    if not model_paths:
        raise UsageError("no model given", option="MODEL")
    output = Path(output)
    outs = bundle_paths(model_paths, output, zip)
    profiles = _resolve_targets(targets, [Path(p) for p in profile_files], here)
    payloads = [_model_payload(m) for m in model_paths]
    data = [
        {
            "calibration": _data_payload(_data_for(calibration, m)),
            "validation": _data_payload(_data_for(validation, m)),
        }
        for m in model_paths
    ]
    common = {
        "profiles": {Path(p).name: Path(p).read_bytes() for p in profile_files},
        "shapes": {k: list(v) for k, v in (shapes or {}).items()},
        "max_drop": max_drop,
        "measure_speed": measure_speed,
        "state": None if state is None else dict(state),
        "family": family,
        "metric": metric,
        "name": name,
        "version": version,
        "min_ort": min_ort,
        "freeze": {k: _plain_value(v) for k, v in (freeze or {}).items()},
    }
    workers = [w for w in list_workers(client) if w["edgeort"]]
    builders = [w for w in workers if w["resources"].get(BUILD)]
    if not builders:
        have = ", ".join(w["name"] for w in workers) or "none"
        raise FarmError("no worker of the farm can package (resource 'build'); workers: " + have)
    routes: dict[str, tuple[dict[str, float], dict[str, Any]]] = {}
    for prof in profiles:
        ep = prof.runtime.ep
        need: dict[str, float] = {BUILD: 1}
        if measure_speed:
            need[TIMING] = 1
        if any(w["resources"].get(ep_resource(ep)) for w in builders):
            routes[prof.name] = ({**need, ep_resource(ep): 1}, {"routed_to": ep_resource(ep)})
        else:
            why = (
                f"no worker of the farm with the build extras advertises {ep_resource(ep)}: "
                "built on another worker and verified on its CPU EP"
            )
            routes[prof.name] = (need, {"routed_to": BUILD, "reason": why})
    futures: dict[Any, str] = {}
    plan: list[tuple[int, str, str]] = []  # (model index, profile, job name)
    total = len(payloads) * len(profiles)
    for i, payload in enumerate(payloads):
        # The tree travels inside each task, not scattered: the scheduler keeps a task's
        # arguments, so a job whose worker dies can run again elsewhere (scattered data
        # would die with the worker that held it).
        model_ref = payload["tree"]
        for prof in profiles:
            name = f"{model_paths[i].name} -> {prof.name}"
            request = {
                **common,
                **data[i],
                "model_name": payload["name"],
                "model_sha256": payload["sha256"],
                "target": prof.name,
            }
            fut = client.submit(
                jobs.package_job, request, model_ref,
                resources=routes[prof.name][0], retries=retries, pure=False,
                key=f"edgeort-package-{i}-{prof.name}-{time.time_ns()}",
            )  # fmt: skip
            futures[fut] = name
            plan.append((i, prof.name, name))
            if on_job is not None:
                on_job(JobEvent("queued", name, "queued", 0, total))
    results = _wait(client, futures, timeout, on_job)
    return _write_bundles(model_paths, outs, plan, results, routes, zip, open_bundle)


def _write_bundles(
    model_paths: Sequence[Path],
    outs: Sequence[Path],
    plan: Sequence[tuple[int, str, str]],
    results: Mapping[str, Any],
    routes: Mapping[str, tuple[dict[str, float], dict[str, Any]]],
    as_zip: bool,
    open_bundle: Callable[..., Any],
) -> FarmPackageReport:
    from edgeort._fs import TMP_PREFIX
    from edgeort.farm.merge import assemble

    failed: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    for i, prof, name in plan:
        res = results[name]
        rec: dict[str, Any] = {"job": name, "model": str(model_paths[i]), "target": prof}
        rec.update(routes[prof][1])
        if isinstance(res, Exception):
            failed[name] = f"{type(res).__name__}: {res}"
            rec.update(ok=False, error=failed[name])
        elif not res.get("ok"):
            failed[name] = (res.get("error") or {}).get("message", "failed")
            rec.update(ok=False, worker=res.get("worker"), error=failed[name])
        else:
            rec.update(ok=True, worker=res.get("worker"), seconds=res.get("seconds"))
        records.append(rec)
    written: list[Path] = []
    for i, out in enumerate(outs):
        mine = [(p, n) for j, p, n in plan if j == i]
        if any(n in failed for _p, n in mine):
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}farm-", dir=out.parent))
        try:
            parts = []
            for k, (prof, n) in enumerate(mine):
                res = results[n]
                if jobs.manifest_digest(res["tree"]) != res["manifest_sha256"]:
                    raise FarmError(f"job {n}: the bundle came back altered", job=n)
                root = write_tree(res["tree"], work / f"p{k}")
                farm_meta = {"worker": res.get("worker"), **routes[prof][1]}
                parts.append((open_bundle(root), {"farm": farm_meta}))
            written.append(assemble(out, parts, as_zip=as_zip))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report = FarmPackageReport(tuple(written), tuple(records), failed)
    if failed:
        lines = "; ".join(f"{k}: {v}" for k, v in failed.items())
        done = ", ".join(str(p) for p in written) or "none"
        raise FarmReportError(
            f"{len(failed)} farm job(s) failed on every try: {lines}. Bundles written: {done} "
            "(a model with a failed job gets no bundle)",
            report=report,
        )
    return report


class FarmReportError(FarmError):
    """A :class:`FarmError` that carries the :class:`FarmPackageReport` of the run."""

    def __init__(self, message: str, *, report: FarmPackageReport) -> None:
        super().__init__(message, job=", ".join(report.failed))
        self.report = report
