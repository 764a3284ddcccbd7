"""``edgeort doctor MODEL|BUNDLE``: the common ORT deployment problems, each explained.

For every model file (a plain model, or each variant of a bundle):

* **partition reports** -- for every profile target, which nodes its EP would take, in
  how many partitions, with a YES/MAYBE/NO verdict (:mod:`edgeort.measure.partition`,
  op tables in :mod:`edgeort.measure.optables`); where the EP is installed and has a
  device here (CPU; QNN as the HTP simulator on x86_64), also the *real* placement ORT
  records (``session.record_ep_graph_assignment_info``);
* **ep-fallback** from each report; **missing-fusion** from the graph after ORT's
  level-ALL optimisation (:mod:`edgeort.measure.checks_graph`);
* on the runnable targets: **thread-contention**, **arena-growth** and, for device EPs,
  **io-copies** (:mod:`edgeort.measure.checks_runtime`).

Each check's meaning and fix is in ``docs/doctor.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeort.errors import EdgeortError
from edgeort.measure.checks_graph import check_fallback, check_fusion, real_report
from edgeort.measure.checks_runtime import check_arena, check_copies, check_threads
from edgeort.measure.findings import Finding
from edgeort.measure.graphinfo import GraphInfo, read_graph
from edgeort.measure.optables import TABLES, load_table
from edgeort.measure.partition import PartitionReport, UnsupportedNode, partition_report
from edgeort.measure.targets import (
    CPU,
    DEFAULT_EP_OPTIONS,
    Knobs,
    Resolved,
    Target,
    create_session,
    ep_unavailable_reason,
    placement,
)
from edgeort.measure.tune import physical_cores

__all__ = ["DoctorReport", "PartitionTarget", "cpu_report", "doctor", "partition_targets"]

log = logging.getLogger(__name__)

Step = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PartitionTarget:
    """One target of the offline report: a profile short name and its EP settings."""

    short: str
    ep: str
    provider_options: Mapping[str, str] = field(default_factory=dict)
    profile: str = ""
    fixed_shapes: bool = False  # the profile's packager step fixes dynamic shapes


@dataclass(frozen=True, slots=True)
class DoctorReport:
    path: Path
    kind: str
    findings: tuple[Finding, ...]
    partitions: Mapping[str, tuple[PartitionReport, ...]]  # model label -> reports
    skipped: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def found(self, check: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.found and (check is None or f.check == check)]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "findings": [f.to_json() for f in self.findings],
            "partitions": {k: [r.to_json() for r in v] for k, v in self.partitions.items()},
            "skipped": dict(self.skipped),
            "notes": list(self.notes),
        }


def partition_targets(profiles: Sequence[Any] | None = None) -> list[PartitionTarget]:
    """One target per profile short name (first profile wins), plus every EP with an
    op table that no profile names yet."""
    if profiles is None:
        from edgeort.profiles import load_profiles

        profiles = load_profiles()
    out: dict[str, PartitionTarget] = {}
    for p in profiles:
        if p.short not in out or getattr(p, "default", False):
            opts = dict(p.runtime.provider_options)
            fixed = bool(p.model.fixed_shapes)
            out[p.short] = PartitionTarget(p.short, p.runtime.ep, opts, p.name, fixed)
    for short in TABLES:
        if short not in out:
            out[short] = PartitionTarget(short, load_table(short).ep)
    out.setdefault("cpu", PartitionTarget("cpu", CPU))
    return [out[k] for k in sorted(out, key=lambda s: (s != "cpu", s))]


def cpu_report(graph: GraphInfo) -> PartitionReport:
    """CPU EP coverage from ORT's own kernel registry (no table needed)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as C

    kernels = {
        (k.domain or "ai.onnx", k.op_name) for k in C.get_all_opkernel_def() if k.provider == CPU
    }
    bad = tuple(
        UnsupportedNode(n.name, n.op_type, n.domain or "ai.onnx", "no CPU kernel")
        for n in graph.nodes
        if ((n.domain or "ai.onnx"), n.op_type) not in kernels
    )
    names = tuple(n.name for n in graph.nodes if n.name not in {u.name for u in bad})
    return PartitionReport(
        "cpu",
        CPU,
        "kernel-registry",
        "onnxruntime get_all_opkernel_def()",
        len(graph.nodes),
        len(names),
        (names,) if names else (),
        bad,
    )


_ASSUMED_FIXED = (
    "dynamic inputs {names} treated as fixed: `edgeort package` fixes them for this target "
    "(profile {profile}: model.fixed_shapes); doctor the packaged variant for the exact report"
)


def _offline(graph: GraphInfo, pt: PartitionTarget) -> PartitionReport | None:
    if pt.short == "cpu" or pt.ep == CPU:
        return cpu_report(graph)
    table = next((load_table(s) for s in TABLES if load_table(s).ep == pt.ep), None)
    if table is None:
        return None
    notes = []
    if pt.provider_options.get("RequireStaticInputShapes") == "1":
        table = replace(table, require_fixed_shapes=True)
        notes.append("RequireStaticInputShapes=1: dynamic shapes rejected")
    if table.require_fixed_shapes and graph.dynamic_inputs and pt.fixed_shapes:
        table = replace(table, require_fixed_shapes=False)
        names = ", ".join(graph.dynamic_inputs)
        notes.append(_ASSUMED_FIXED.format(names=names, profile=pt.profile))
    return partition_report(graph.nodes, table, graph.shapes, note="; ".join(notes))


def _free_dims(graph: GraphInfo) -> dict[str, int]:
    """Named dynamic dims -> 1, for a real placement of a model the packager fixes."""
    return {
        d: 1
        for name in graph.dynamic_inputs
        for d in graph.shapes.shapes.get(name, ())
        if isinstance(d, str)
    }


def _real(
    path: Path, label: str, pt: PartitionTarget, graph: GraphInfo
) -> PartitionReport | Finding | None:
    """ORT's real placement where ``pt.ep`` runs here; a skipped Finding when ORT
    cannot create the session; None where the EP is not here (or is the CPU)."""
    if pt.ep == CPU or ep_unavailable_reason(pt.ep) is not None:
        return None
    options = {**DEFAULT_EP_OPTIONS.get(pt.ep, {}), **pt.provider_options}
    target = Target(label=label, model_path=path, ep=pt.ep, provider_options=options)
    free = _free_dims(graph) if pt.fixed_shapes else {}
    try:
        session = create_session(target, Knobs(free_dims=free), record_placement=True)
    except EdgeortError as exc:
        return Finding(
            "ep-fallback",
            "skipped",
            f"{label} on {pt.short}",
            f"{pt.ep} is installed but could not create a session for real placement",
            detail=str(exc),
            evidence={"method": "real-placement"},
        )
    report = real_report(pt.short, pt.ep, placement(session))
    if free:
        dims = ", ".join(f"{k}=1" for k in sorted(free))
        report = replace(report, note=f"free dimensions fixed for placement: {dims}")
    return report


def _model_checks(
    label: str, path: Path, pts: Sequence[PartitionTarget], step: Step
) -> tuple[list[Finding], list[PartitionReport]]:
    step(f"{label}: reading the graph")
    graph = read_graph(path)
    findings, reports = [], []
    for pt in pts:
        for report in (_offline(graph, pt), _real(path, label, pt, graph)):
            if isinstance(report, Finding):
                findings.append(report)
                continue
            if report is None:
                continue
            reports.append(report)
            if report.ep != CPU:
                findings.append(check_fallback(report, graph.nodes, f"{label} on {pt.short}"))
    step(f"{label}: looking for unfused attention")
    findings.append(check_fusion(path, label))
    return findings, reports


def _guarded(check: str, target: Target, fn: Callable[[], Finding]) -> Finding:
    """Run one check; a session ORT refuses becomes a skipped finding saying why."""
    try:
        return fn()
    except EdgeortError as exc:
        return Finding(check, "skipped", target.label, f"could not run: {exc}", detail=str(exc))


def _runtime_checks(target: Target, cores: int, graph: GraphInfo, step: Step) -> list[Finding]:
    step(f"{target.label}: threads 1 vs {cores}")
    out = [_guarded("thread-contention", target, lambda: check_threads(target, cores))]
    step(f"{target.label}: arena growth with dynamic shapes")
    out.append(_guarded("arena-growth", target, lambda: check_arena(target, graph)))
    if target.ep != CPU:

        def copies() -> Finding:
            session = create_session(target, record_placement=True)
            return check_copies(target, placement(session), session)

        out.append(_guarded("io-copies", target, copies))
    return out


def doctor(
    resolved: Resolved,
    *,
    profiles: Sequence[Any] | None = None,
    run: bool = True,
    on_step: Step | None = None,
) -> DoctorReport:
    """Run every check on what ``resolved`` stands for (see the module docstring).
    ``run=False`` skips the checks that execute the model."""
    step = on_step or (lambda _msg: None)
    findings: list[Finding] = []
    partitions: dict[str, tuple[PartitionReport, ...]] = {}
    if resolved.kind == "model":
        pts = partition_targets(profiles)
    seen: set[Path] = set()
    for label, path, ep in resolved.model_files:
        if path in seen:
            continue
        seen.add(path)
        if resolved.kind == "bundle":
            pts = [_variant_pt(resolved, label, ep)]
        f, reports = _model_checks(label, path, pts, step)
        findings += f
        partitions[label] = tuple(reports)
    if run:
        cores = physical_cores(resolved.device)
        for target in resolved.targets:
            graph = read_graph(target.model_path, optimize="none")
            findings += _runtime_checks(target, cores, graph, step)
    notes = ("runtime checks skipped (--no-run)",) if not run else ()
    return DoctorReport(
        resolved.path, resolved.kind, tuple(findings), partitions, dict(resolved.skipped), notes
    )


def _variant_pt(resolved: Resolved, label: str, ep: str) -> PartitionTarget:
    assert resolved.bundle is not None  # only bundles have variant labels
    variant = next(v for v in resolved.bundle.variants if v.name == label)
    short = next((s for s in TABLES if load_table(s).ep == ep), "cpu" if ep == CPU else ep)
    return PartitionTarget(short, ep, dict(variant.provider_options), variant.profile)
