"""Measurement rows from JSON files, whoever wrote them.

Accepted files (UTF-8 JSON, at most 64 MiB):

* ``edgeort bench --json`` output: ``{"command": "bench", "results": [...], "machine": {...}}``;
* any object with a ``results`` or ``rows`` list (device-farm and runtime results);
* a bare list of rows.

A row is an object. Its fields are read generically, so rows from other tools fit:

* variant: ``variant``, else ``label``;
* median latency (ms): ``latency.median_ms``, ``latency.p50_ms``, ``median_ms``, ``p50_ms``,
  ``p50``, ``ms_median``, ``latency_ms``; ``p95``/``p99`` likewise;
* where: ``worker``, ``device`` (a string or an object with ``name``/``hostname``),
  ``runtime`` (a string or an object with ``name``), ``machine``/``probe`` (probe JSON or its
  summary), ``simulated``, ``ep``, ``ort_version``/``ort_build``;
* accuracy measured there: ``accuracy`` (a number or an object with ``value``/``metric``/``bound``).

Top-level fields of an object file (``worker``, ``device``, ``runtime``, ``machine``,
``probe``) apply to every row that lacks them. A row without a finite median latency is
kept out of the charts and listed with the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeort.errors import DataError
from edgeort.report.machine import machine_summary

__all__ = ["MAX_BYTES", "Row", "load_rows"]

MAX_BYTES = 64 << 20
_SHARED = ("worker", "device", "runtime", "machine", "probe", "ort_version", "ort_build")

Row = dict[str, Any]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _first_number(row: Mapping[str, Any], lat: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        for source in (lat, row):
            found = _number(source.get(key))
            if found is not None:
                return found
    return None


def _name(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping):
        for key in ("name", "hostname", "host", "id", "cpu_model"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key]).strip()
    return None


def _accuracy(value: Any) -> dict[str, Any] | None:
    if _number(value) is not None:
        return {"value": _number(value)}
    if isinstance(value, Mapping) and _number(value.get("value")) is not None:
        out: dict[str, Any] = {"value": _number(value.get("value"))}
        if isinstance(value.get("metric"), str):
            out["metric"] = value["metric"]
        if _number(value.get("bound")) is not None:
            out["bound"] = _number(value.get("bound"))
        return out
    return None


def _machine(row: Mapping[str, Any]) -> dict[str, Any] | None:
    for key in ("machine", "probe"):
        value = row.get(key)
        if isinstance(value, Mapping):
            inner = value.get("device")
            return machine_summary(inner if isinstance(inner, Mapping) else value)
    return None


def _row(raw: Mapping[str, Any], source: str, index: int) -> Row:
    found = raw.get("latency")
    lat: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    variant = _name(raw.get("variant")) or _name(raw.get("label"))
    worker, runtime = _name(raw.get("worker")), _name(raw.get("runtime"))
    device = _name(raw.get("device"))
    machine = _machine(raw)
    where = worker or device or (machine or {}).get("cpu_model") or f"unrecorded machine ({source})"
    if worker and device and device != worker:
        where = f"{worker} ({device})"
    row: Row = {
        "source": source,
        "index": index,
        "variant": variant,
        "ep": raw.get("ep") if isinstance(raw.get("ep"), str) else None,
        "worker": worker,
        "device": device,
        "runtime": runtime,
        "where": where + (f" · runtime {runtime}" if runtime else ""),
        "simulated": raw.get("simulated") is True,
        "median_ms": _first_number(
            raw, lat, ("median_ms", "p50_ms", "p50", "ms_median", "latency_ms")
        ),
        "p95_ms": _first_number(raw, lat, ("p95_ms", "p95")),
        "p99_ms": _first_number(raw, lat, ("p99_ms", "p99")),
        "ort": _name(raw.get("ort_build")) or _name(raw.get("ort_version")),
        "accuracy": _accuracy(raw.get("accuracy")),
        "machine": machine,
    }
    return row


def _read(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise DataError(f"{path}: {size} bytes; a results file may have at most {MAX_BYTES}")
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{path}: cannot read the results JSON: {exc}", path=path) from exc


def load_rows(path: str | Path) -> tuple[list[Row], list[str]]:
    """(rows, problems) of one results file; ``problems`` names rows kept out and why."""
    path = Path(path)
    doc = _read(path)
    shared: dict[str, Any] = {}
    if isinstance(doc, Mapping):
        items = doc.get("results", doc.get("rows"))
        if not isinstance(items, list):
            raise DataError(
                f"{path}: expected a list under 'results' or 'rows' (edgeort bench --json, "
                "farm or runtime results), or a JSON list of rows",
                path=path,
            )
        shared = {k: doc[k] for k in _SHARED if k in doc}
    elif isinstance(doc, list):
        items = doc
    else:
        raise DataError(f"{path}: expected a JSON object or list of result rows", path=path)
    rows: list[Row] = []
    problems: list[str] = []
    for i, raw in enumerate(items):
        if not isinstance(raw, Mapping):
            problems.append(f"{path.name} row {i}: not an object")
            continue
        row = _row({**shared, **raw}, path.name, i)
        if row["variant"] is None:
            problems.append(f"{path.name} row {i}: no 'variant' or 'label'")
        elif row["median_ms"] is None:
            problems.append(f"{path.name} row {i} ({row['variant']}): no finite median latency")
        else:
            rows.append(row)
    return rows, problems
