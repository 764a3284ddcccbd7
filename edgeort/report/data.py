"""Everything a report shows, as one JSON-able dict (``edgeort report --json``).

The HTML page is rendered from exactly this dict (:mod:`edgeort.report.render`), so the
page and the JSON cannot disagree. Strings in it come from the bundle and from results
files, which are untrusted: the renderer escapes every one of them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeort import __version__
from edgeort.report.machine import machine_summary
from edgeort.report.rows import Row, load_rows

__all__ = ["SCHEMA", "build_report"]

log = logging.getLogger(__name__)

SCHEMA = 1
CPU = "CPUExecutionProvider"
HERE = "this machine"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(float(value)) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _runtime_name(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        name = _str(value.get("name")) or "?"
        build = _str(value.get("ort_build")) or _str(value.get("package"))
        version = _str(value.get("ort_version")) or _str(value.get("version"))
        extra = " ".join(x for x in (build, version) if x)
        return f"{name} ({extra})" if extra else name
    return None


def _gates(meta: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    for g in meta.get("gates") or ():
        if isinstance(g, Mapping):
            out.append(
                {
                    k: str(g[k])
                    for k in ("gate", "decision", "reason", "recipe")
                    if isinstance(g.get(k), str | int | float)
                }
            )
    return out


def _said_simulated(gates: Sequence[Mapping[str, str]]) -> bool:
    """Bundles written before ``accuracy.simulated`` existed say it in the speed gate."""
    return any(
        g.get("gate") == "speed" and "runs in simulation" in g.get("reason", "") for g in gates
    )


def _verified(
    ep: str, acc: Mapping[str, Any] | None, gates: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    if not acc:
        return {"kind": "unverified", "on_ep": None, "text": "not verified (no accuracy record)"}
    on_ep = _str(acc.get("on_ep")) or "an unrecorded EP"
    runtime = _runtime_name(acc.get("runtime"))
    reason = _str(acc.get("on_ep_reason"))
    if runtime:
        kind, text = "runtime", f"on {on_ep} in the runtime {runtime}"
    elif on_ep != ep:
        kind, text = "substitute", f"on {on_ep}, not on {ep}" + (f" ({reason})" if reason else "")
    elif acc.get("simulated") is True or (acc.get("simulated") is None and _said_simulated(gates)):
        kind, text = "simulated", f"on {on_ep}, in simulation (not the device's hardware)"
    else:
        kind, text = "real", f"on {on_ep}"
    data = _str(acc.get("data_source")) or _str(acc.get("data"))
    samples = acc.get("samples")
    if data:
        text += f", {samples} {data} samples" if isinstance(samples, int) else f", {data} data"
    return {"kind": kind, "on_ep": on_ep, "runtime": runtime, "text": text}


def _accuracy(acc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not acc:
        return None
    out: dict[str, Any] = {
        "metric": _str(acc.get("metric")) or "?",
        "value": _num(acc.get("value")),
        "bound": _num(acc.get("bound")),
        "passed": acc.get("passed") if isinstance(acc.get("passed"), bool) else None,
    }
    for key in ("top1_accuracy", "fp32_top1_accuracy", "top1_agreement", "cosine_mean"):
        if _num(acc.get(key)) is not None:
            out[key] = _num(acc.get(key))
    return out


def _latency(lat: Any) -> dict[str, Any] | None:
    if not isinstance(lat, Mapping) or _num(lat.get("ms_median")) is None:
        return None
    return {
        "ms_median": _num(lat.get("ms_median")),
        "ep": _str(lat.get("ep")),
        "device": _str(lat.get("device")),
        "fingerprint": _str(lat.get("device_fingerprint")),
        "ort_version": _str(lat.get("ort_version")),
        "ep_version": _str(lat.get("ep_version")),
    }


def _variant(v: Any) -> dict[str, Any]:
    meta = v.metadata if isinstance(v.metadata, Mapping) else {}
    acc = meta.get("accuracy") if isinstance(meta.get("accuracy"), Mapping) else None
    gates = _gates(meta)
    return {
        "name": v.name,
        "target": v.profile,
        "ep": v.ep,
        "device": v.device or "any",
        "precision": v.precision,
        "recipe": _str(meta.get("recipe_label")),
        "size_bytes": sum(f.size for f in v.files),
        "accuracy": _accuracy(acc),
        "verified": _verified(v.ep, acc, gates),
        "latency": _latency(meta.get("latency")),
        "gates": gates,
        "prepare": [str(p) for p in meta.get("prepare") or () if isinstance(p, str)],
        "min_ort": v.min_ort,
        "ep_package": v.ep_package,
    }


# -- devices and their points ------------------------------------------------------------


class _Machines:
    """Every machine that contributed figures, keyed by fingerprint (or label)."""

    def __init__(self, here: Mapping[str, Any]) -> None:
        self.here = dict(here)
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, key: str, label: str, role: str, summary: Mapping[str, Any] | None) -> str:
        fp = (summary or {}).get("fingerprint")
        if fp and fp == self.here.get("fingerprint"):
            key, label = f"fp:{fp}", HERE
        elif fp:
            key = f"fp:{fp}"
        entry = self.items.setdefault(
            key, {"id": key, "label": label, "roles": [], "summary": None}
        )
        if summary and not entry["summary"]:
            entry["summary"] = dict(summary)
        if role not in entry["roles"]:
            entry["roles"].append(role)
        return str(entry["label"])


def _point(variant: Mapping[str, Any] | None, name: str, **fields: Any) -> dict[str, Any]:
    acc = (variant or {}).get("accuracy") or {}
    own = fields.pop("row_accuracy", None) or {}
    value = own.get("value", acc.get("value"))
    return {
        "variant": name,
        "in_bundle": variant is not None,
        "accuracy": value,
        "accuracy_from": "this measurement" if own else ("bundle" if value is not None else None),
        "metric": own.get("metric", acc.get("metric")),
        "bound": own.get("bound", acc.get("bound")),
        **fields,
    }


def _build_host(
    variants: Sequence[Mapping[str, Any]], machines: _Machines
) -> dict[str, Any] | None:
    timed = [v for v in variants if v["latency"]]
    if not timed:
        return None
    fps = sorted({v["latency"]["fingerprint"] or "?" for v in timed})
    here_fp = machines.here.get("fingerprint")
    if fps == [here_fp]:
        label = machines.add("build", HERE, "build host (latency in the bundle)", machines.here)
    else:
        summary = {"summary": 1, "fingerprint": fps[0]} if len(fps) == 1 and fps[0] != "?" else None
        label = machines.add("build", "build host", "build host (latency in the bundle)", summary)
    points = [
        _point(
            v,
            v["name"],
            latency_ms=v["latency"]["ms_median"],
            p95_ms=None,
            ep=v["latency"]["ep"],
            simulated=v["verified"]["kind"] == "simulated",
            runtime=None,
            source="bundle (recorded when packaged)",
        )
        for v in timed
    ]
    missing = [
        f"{v['name']}: no latency in the bundle ({_why_no_latency(v)})"
        for v in variants
        if not v["latency"]
    ]
    return {"id": "build", "label": f"{label} (build host)" if label == HERE else label,
            "points": points, "notes": missing}  # fmt: skip


def _why_no_latency(v: Mapping[str, Any]) -> str:
    for g in v["gates"]:
        if g.get("gate") == "speed" and g.get("decision") == "skip":
            return str(g.get("reason", "speed not measured"))
    return "not measured when packaged"


def _bench_devices(
    files: Iterable[Path],
    variants: Mapping[str, Mapping[str, Any]],
    machines: _Machines,
    notes: list[str],
) -> list[dict[str, Any]]:
    groups: dict[str, list[Row]] = {}
    for path in files:
        rows, problems = load_rows(path)
        notes.extend(problems)
        for row in rows:  # one device per place and machine (two hosts may share a CPU)
            fp = (row["machine"] or {}).get("fingerprint") or ""
            groups.setdefault(f"{row['where']}|{fp}", []).append(row)
    devices = []
    for key, rows in groups.items():
        where = rows[0]["where"]
        machine = next((r["machine"] for r in rows if r["machine"]), None)
        sources = sorted({r["source"] for r in rows})
        role = "measured: " + ", ".join(sources)
        label = machines.add(f"rows:{key}", where, role, machine)
        if label == HERE:
            label = rows[0]["worker"] or f"{HERE} · {', '.join(sources)}"
        if rows[0]["runtime"] and rows[0]["runtime"] not in label:
            label = f"{label} · runtime {rows[0]['runtime']}"
        points, dnotes = [], []
        for r in rows:
            variant = variants.get(r["variant"])
            point = _point(
                variant,
                r["variant"],
                row_accuracy=r["accuracy"],
                latency_ms=r["median_ms"],
                p95_ms=r["p95_ms"],
                p99_ms=r["p99_ms"],
                ep=r["ep"],
                simulated=r["simulated"],
                runtime=r["runtime"],
                ort=r["ort"],
                source=r["source"],
            )
            if variant is None:
                dnotes.append(f"{r['variant']} ({r['source']}): not a variant of this bundle")
            points.append(point)
        devices.append({"id": f"rows:{key}", "label": label, "points": points, "notes": dnotes})
    return devices


# -- where time goes ---------------------------------------------------------------------


def _profile_entries(path: Path) -> list[dict[str, Any]]:
    from edgeort.errors import DataError
    from edgeort.measure.trace import summarize_trace
    from edgeort.report.rows import _read

    doc = _read(path)
    if isinstance(doc, Mapping) and doc.get("command") == "profile":  # edgeort profile --json
        results = doc.get("results")
        if not isinstance(results, list):
            raise DataError(f"{path}: 'results' must be a list", path=path)
        out = [
            _profile_json(path, r, f"{path.name}: {r.get('label', '?')}")
            for r in results
            if isinstance(r, Mapping)
        ]
        return out
    if not (isinstance(doc, list) or (isinstance(doc, Mapping) and "traceEvents" in doc)):
        raise DataError(
            f"{path}: expected an ORT profile trace (a JSON list of trace events) or "
            "'edgeort profile --json' output",
            path=path,
        )
    result = summarize_trace(path, runs=0, top=10, label=path.name)
    entry = _profile_json(path, result.to_json(), path.name)
    if not entry["op_types"]:
        raise DataError(f"{path}: the trace holds no node timings (cat 'Node')", path=path)
    entry["note"] = f"all {result.runs} model runs in the trace, warm-up runs included"
    return [entry]


def _profile_json(path: Path, r: Mapping[str, Any], label: str) -> dict[str, Any]:
    ops = []
    for o in r.get("op_types") or ():
        if isinstance(o, Mapping) and _num(o.get("total_ms")) is not None:
            ops.append(
                {
                    "op_type": str(o.get("op_type", "?")),
                    "total_ms": _num(o.get("total_ms")),
                    "share": _num(o.get("share")) or 0.0,
                    "count": o.get("count") if isinstance(o.get("count"), int) else None,
                }
            )
    found = r.get("ep_share")
    ep_share: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {
        "source": path.name,
        "label": label,
        "ep": _str(r.get("ep")) or (next(iter(ep_share), None) if ep_share else None),
        "runs": r.get("runs") if isinstance(r.get("runs"), int) else None,
        "run_avg_ms": _num(r.get("run_avg_ms")),
        "op_types": sorted(ops, key=lambda o: -o["total_ms"]),
        "ep_share": {str(k): _num(v) or 0.0 for k, v in ep_share.items()},
        "note": "",
    }


# -- placement ---------------------------------------------------------------------------

_METHODS = {
    "real-placement": "run-time placement (ORT, on this machine)",
    "offline-table": "offline partition report (EP op table)",
    "kernel-registry": "CPU EP kernel registry",
}


def _ordered_nodes(report: Any, order: Mapping[str, tuple[int, str]]) -> list[dict[str, str]]:
    """Nodes in graph order: a node ORT made (not in the file) follows the one listed
    before it."""
    listed: list[tuple[str, str, str]] = [
        (name, order.get(name, (0, "?"))[1], report.ep)
        for part in report.partitions
        for name in part
    ]
    for node in report.unsupported:
        reason = node.reason
        ep = reason.removeprefix("placed on ") if reason.startswith("placed on ") else CPU
        listed.append((node.name, node.op_type, ep))
    keyed, last = [], -1.0
    for i, (name, op, ep) in enumerate(listed):
        key = float(order[name][0]) if name in order else last + 1e-3
        last = key
        keyed.append((key, i, {"name": name, "op_type": op, "ep": ep}))
    return [n for _k, _i, n in sorted(keyed, key=lambda t: (t[0], t[1]))]


def _strips(
    label: str, model_path: Path, reports: Sequence[Any], sim_ep: bool
) -> list[dict[str, Any]]:
    from edgeort.measure.graphinfo import read_graph

    graph = read_graph(model_path, optimize="none")
    order = {n.name: (i, n.op_type) for i, n in enumerate(graph.nodes)}
    out = []
    for r in reports:
        sim = r.method == "real-placement" and sim_ep
        out.append(
            {
                "variant": label,
                "ep": r.ep,
                "method": r.method,
                "method_text": _METHODS.get(r.method, r.method) + (", simulated EP" if sim else ""),
                "source": r.source,
                "simulated": sim,
                "nodes": _ordered_nodes(r, order),
                "nodes_total": r.num_nodes,
                "nodes_on_ep": r.num_supported,
                "pct_on_ep": round(r.pct_supported, 1),
                "partitions": r.num_partitions,
                "fallback_ops": r.unsupported_ops(),
                "verdict": r.verdict,
                "note": r.note,
            }
        )
    return out


def _placement(
    path: Path, variants: Sequence[Any], device: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per variant of the bundle at ``path`` (one at a time, so one unreadable model costs
    only its own strip)."""
    from edgeort.errors import EdgeortError
    from edgeort.measure.doctor import doctor
    from edgeort.measure.targets import resolve

    out: list[dict[str, Any]] = []
    notes: list[str] = []
    for variant in variants:
        name = variant.name
        if variant.model_file.lower().endswith(".ort"):
            notes.append(
                f"{name}: no placement strip: {variant.model_file} is in ORT format, and the "
                "partition reports read ONNX graphs"
            )
            continue
        try:
            resolved = resolve(path, variant=name, device=device)
            report = doctor(resolved, run=False)
            simulated = any(t.simulated for t in resolved.targets)
            for label, model_path, _ep in resolved.model_files:
                if label != name:  # model_files lists every variant of the bundle
                    continue
                reports = report.partitions.get(label, ())
                if not reports:
                    notes.append(f"{label}: no partition report for {variant.ep} (no op table)")
                out += _strips(label, model_path, reports, simulated)
        except EdgeortError as exc:
            notes.append(f"{name}: no placement strip ({exc})")
            continue
        for skipped, why in resolved.skipped.items():
            notes.append(f"{skipped}: no run-time placement here ({why})")
    return out, notes


# -- the whole report --------------------------------------------------------------------


def build_report(
    bundle: str | Path,
    *,
    bench: Sequence[str | Path] = (),
    traces: Sequence[str | Path] = (),
    placement: bool = True,
    device: Any = None,
) -> dict[str, Any]:
    """The report's data for ``bundle`` (directory or ``.zip``), measurement files
    ``bench`` (see :mod:`edgeort.report.rows`) and profile ``traces`` (ORT traces or
    ``edgeort profile --json``). ``device``: this machine's ``DeviceInfo`` (probed when None).
    ``placement=False`` skips the partition reports (they need onnx and create sessions).
    """
    from edgeort.bundle import open_bundle
    from edgeort.hardware import probe

    path = Path(bundle)
    opened = open_bundle(path)
    device = device if device is not None else probe()
    here = machine_summary(device.to_json())
    machines = _Machines(here)
    variants = [_variant(v) for v in opened.variants]
    by_name = {v["name"]: v for v in variants}
    notes: list[str] = []
    devices = []
    host = _build_host(variants, machines)
    if host is not None:
        devices.append(host)
    devices += _bench_devices([Path(p) for p in bench], by_name, machines, notes)
    profiles = [e for p in traces for e in _profile_entries(Path(p))]
    strips: list[dict[str, Any]] = []
    if placement:
        strips, pnotes = _placement(path, opened.variants, device)
        notes.extend(pnotes)
        if any(s["method"] == "real-placement" for s in strips):
            machines.add("here", HERE, "run-time placement", here)
    meta = opened.metadata if isinstance(opened.metadata, Mapping) else {}
    found = meta.get("source_model")
    source: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {
        "report": SCHEMA,
        "generator": f"edgeort {__version__}",
        "bundle": {
            "path": str(path),
            "name": opened.package_name,
            "version": opened.package_version,
            "source_model": _str(source.get("name")),
            "variants": len(variants),
        },
        "variants": variants,
        "devices": devices,
        "profiles": profiles,
        "placement": strips,
        "machines": list(machines.items.values()),
        "notes": notes,
    }
