"""``edgeort profile``: ORT's own profiler, summarised.

The session runs with ``enable_profiling``; ORT writes a Chrome trace (open it in
``chrome://tracing`` or Perfetto). From that trace this module reads the ``Node`` events
(``<node>_kernel_time``, whose ``args`` carry ``op_name`` and ``provider``) of the timed
runs only -- warm-up runs are in the file but left out of the summary -- and reports:
time per op type (total, share, count, average), the slowest nodes, and which EP ran each
node. A compiled EP partition (QNN, OpenVINO...) shows up as one node of that EP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeort.errors import DataError
from edgeort.measure.bench import feeds_for
from edgeort.measure.targets import Knobs, Target, create_session

__all__ = ["NodeTime", "OpTime", "ProfileResult", "profile_target", "summarize_trace"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpTime:
    op_type: str
    total_ms: float  # over all timed runs
    share: float  # fraction of all node time
    count: int  # node executions over all timed runs
    avg_ms: float  # per execution


@dataclass(frozen=True, slots=True)
class NodeTime:
    name: str
    op_type: str
    ep: str
    avg_ms: float  # per run
    share: float


@dataclass(frozen=True, slots=True)
class ProfileResult:
    label: str
    ep: str
    trace_path: Path
    runs: int
    run_avg_ms: float  # model_run events, per run
    ops: tuple[OpTime, ...]
    slowest: tuple[NodeTime, ...]
    node_eps: Mapping[str, str]  # node name -> EP that ran it
    ep_share: Mapping[str, float]  # EP -> fraction of node time

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "ep": self.ep,
            "trace": str(self.trace_path),
            "runs": self.runs,
            "run_avg_ms": round(self.run_avg_ms, 4),
            "op_types": [
                {
                    "op_type": o.op_type,
                    "total_ms": round(o.total_ms, 4),
                    "share": round(o.share, 4),
                    "count": o.count,
                    "avg_ms": round(o.avg_ms, 4),
                }
                for o in self.ops
            ],
            "slowest_nodes": [
                {
                    "name": n.name,
                    "op_type": n.op_type,
                    "ep": n.ep,
                    "avg_ms": round(n.avg_ms, 4),
                    "share": round(n.share, 4),
                }
                for n in self.slowest
            ],
            "node_eps": dict(self.node_eps),
            "ep_share": {k: round(v, 4) for k, v in self.ep_share.items()},
        }


def _read_trace(path: Path) -> list[dict[str, Any]]:
    try:
        events = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the ORT profile trace: {exc}", path=path) from exc
    if isinstance(events, dict):  # some writers wrap the list
        events = events.get("traceEvents", [])
    return [e for e in events if isinstance(e, dict)]


def _timed_windows(events: list[dict[str, Any]], runs: int) -> list[tuple[int, int]]:
    model_runs = sorted(
        (int(e["ts"]), int(e["ts"]) + int(e.get("dur", 0)))
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    return model_runs[-runs:] if runs > 0 else model_runs


def summarize_trace(
    path: str | Path, *, runs: int, top: int = 10, label: str = "", ep: str = ""
) -> ProfileResult:
    """Summarise the last ``runs`` model runs of an ORT profile trace."""
    path = Path(path)
    events = _read_trace(path)
    windows = _timed_windows(events, runs)
    n_runs = max(1, len(windows))

    def timed(e: dict[str, Any]) -> bool:
        ts = int(e.get("ts", -1))
        return any(lo <= ts <= hi for lo, hi in windows)

    nodes = [
        e
        for e in events
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time") and timed(e)
    ]
    per_op: dict[str, list[float]] = {}
    per_node: dict[str, tuple[str, str, float]] = {}
    for e in nodes:
        args = e.get("args", {})
        op, provider = str(args.get("op_name", "?")), str(args.get("provider", "?"))
        if op.startswith(provider) and provider != "?":
            op = f"{provider} partition"  # a compiled EP partition (fused node)
        name = str(e["name"])[: -len("_kernel_time")]
        dur = float(e.get("dur", 0)) / 1000.0
        per_op.setdefault(op, []).append(dur)
        prev = per_node.get(name, (op, provider, 0.0))
        per_node[name] = (op, provider, prev[2] + dur)
    total = sum(sum(v) for v in per_op.values()) or 1.0
    ops = sorted(
        (OpTime(op, sum(d), sum(d) / total, len(d), sum(d) / len(d)) for op, d in per_op.items()),
        key=lambda o: -o.total_ms,
    )
    slowest = sorted(
        (NodeTime(n, op, p, t / n_runs, t / total) for n, (op, p, t) in per_node.items()),
        key=lambda x: -x.avg_ms,
    )[:top]
    ep_share: dict[str, float] = {}
    for _op, provider, t in per_node.values():
        ep_share[provider] = ep_share.get(provider, 0.0) + t / total
    run_ms = [(hi - lo) / 1000.0 for lo, hi in windows]
    return ProfileResult(
        label=label,
        ep=ep,
        trace_path=path,
        runs=len(windows),
        run_avg_ms=sum(run_ms) / len(run_ms) if run_ms else 0.0,
        ops=tuple(ops),
        slowest=tuple(slowest),
        node_eps={n: p for n, (_op, p, _t) in sorted(per_node.items())},
        ep_share=dict(sorted(ep_share.items(), key=lambda kv: -kv[1])),
    )


def profile_target(
    target: Target,
    *,
    out_dir: str | Path,
    knobs: Knobs | None = None,
    input_files: Mapping[str, str | Path] | None = None,
    dims: Mapping[str, int] | None = None,
    warmup: int = 3,
    runs: int = 20,
    top: int = 10,
) -> ProfileResult:
    """Run ``target`` under ORT's profiler; the trace lands in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = str(out / f"edgeort_profile_{_slug(target.label)}")
    session = create_session(target, knobs, profile_prefix=prefix)
    feeds = feeds_for(session, input_files=input_files, dims=dims)
    for _ in range(max(0, warmup)):
        session.run(None, feeds)
    for _ in range(max(1, runs)):
        session.run(None, feeds)
    trace = Path(session.end_profiling())
    log.info("ORT profile trace written to %s", trace)
    return summarize_trace(trace, runs=max(1, runs), top=top, label=target.label, ep=target.ep)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60] or "model"
