"""Readable text for the measure commands (the CLI prints these lines; ``--json`` does not)."""

from __future__ import annotations

from collections.abc import Sequence

from edgeort.measure.bench import BenchReport, BenchResult
from edgeort.measure.doctor import DoctorReport
from edgeort.measure.trace import ProfileResult
from edgeort.measure.tune import TuneResult

__all__ = ["format_bench", "format_doctor", "format_profile", "format_tune", "table"]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others, two spaces between."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = [
            str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
            for i, c in enumerate(cells)
        ]
        return "  ".join(out).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _bench_row(r: BenchResult, speedup: float | None) -> list[str]:
    s = r.summary
    ep = r.ep.replace("ExecutionProvider", "") + (" (sim)" if r.simulated else "")
    row = [
        r.label,
        ep,
        f"{s.median_ms:.3f}",
        f"{s.mean_ms:.3f}",
        f"{s.p90_ms:.3f}",
        f"{s.p95_ms:.3f}",
        f"{s.p99_ms:.3f}",
        f"{s.min_ms:.3f}",
        f"{s.max_ms:.3f}",
        f"{s.throughput:.1f}",
        f"{r.session_create_ms:.0f}",
        f"{r.peak_rss_mb:.0f}",
    ]
    row.append("" if speedup is None else f"{speedup:.2f}x")
    return row


def format_bench(report: BenchReport) -> list[str]:
    header = [
        "target",
        "EP",
        "median",
        "mean",
        "p90",
        "p95",
        "p99",
        "min",
        "max",
        "inf/s",
        "create",
        "RSS MB",
        "vs fp32",
    ]
    rows = [_bench_row(r, report.speedup(r)) for r in report.results]
    if report.baseline is not None:
        rows.append(_bench_row(report.baseline, 1.0))
    lines = ["latency in ms (create: session creation ms)", *table(header, rows)]
    if report.results:
        n = report.results[0].summary.n
        lines.append(f"{n} timed runs each after {report.results[0].warmup} warm-up runs")
    for name, why in report.skipped.items():
        lines.append(f"skipped {name}: {why}")
    return lines


def format_profile(p: ProfileResult, top: int = 10) -> list[str]:
    lines = [
        f"{p.label} on {p.ep}: {p.runs} profiled runs, {p.run_avg_ms:.3f} ms per run",
        f"Chrome trace: {p.trace_path}  (open in chrome://tracing or ui.perfetto.dev)",
        "",
        "time by op type:",
    ]
    rows = [
        [o.op_type, f"{o.total_ms:.3f}", f"{100 * o.share:.1f}%", str(o.count), f"{o.avg_ms:.4f}"]
        for o in p.ops[:top]
    ]
    lines += table(["op type", "total ms", "share", "count", "avg ms"], rows)
    lines += ["", "slowest nodes (ms per run):"]
    rows = [
        [n.name, n.op_type, n.ep, f"{n.avg_ms:.4f}", f"{100 * n.share:.1f}%"] for n in p.slowest
    ]
    lines += table(["node", "op type", "EP", "ms/run", "share"], rows)
    shares = ", ".join(f"{ep}: {100 * v:.1f}%" for ep, v in p.ep_share.items())
    lines += ["", f"node time per EP: {shares or 'no node events'}"]
    return lines


def format_tune(t: TuneResult) -> list[str]:
    best = ", ".join(f"{k}={v}" for k, v in sorted(t.best.items()))
    lines = [
        f"{t.label} on {t.ep}: best {t.best_ms:.3f} ms (default settings {t.default_ms:.3f} ms, "
        f"{t.speedup:.2f}x)",
        f"settings: {best}",
        f"search: {t.strategy}, {t.evaluated} of {t.space_size} settings measured in "
        f"{t.elapsed_s:.1f} s (budget {t.budget_s:g} s"
        + (", stopped by the budget)" if t.stopped_by_budget else ")"),
    ]
    if t.cache_path:
        lines.append(f"saved: {t.cache_path} (edgeort.load uses it on this device)")
    return lines


_MARK = {"found": "!!", "ok": "ok", "skipped": "--"}


def format_doctor(r: DoctorReport) -> list[str]:
    lines = [f"doctor: {r.path} ({r.kind})", ""]
    for label, reports in r.partitions.items():
        lines.append(f"partition report for {label}:")
        rows = [
            [
                rep.target,
                rep.method,
                f"{rep.num_supported}/{rep.num_nodes}",
                f"{rep.pct_supported:.0f}%",
                str(rep.num_partitions),
                rep.verdict,
                ", ".join(rep.unsupported_ops()) or "-",
            ]
            for rep in reports
        ]
        lines += table(["target", "method", "nodes", "share", "parts", "verdict", "CPU ops"], rows)
        for rep in reports:
            if rep.note:
                lines.append(f"  {rep.target}: {rep.note}")
        lines.append("")
    for f in r.findings:
        if f.check == "ep-fallback" and f.status == "ok":
            continue
        lines.append(f"[{_MARK.get(f.status, f.status)}] {f.check}: {f.target}: {f.title}")
        if f.found:
            if f.detail:
                lines.append(f"     why: {f.detail}")
            if f.fix:
                lines.append(f"     fix: {f.fix}")
    for name, why in r.skipped.items():
        lines.append(f"[--] not run here: {name}: {why}")
    lines += [f"note: {n}" for n in r.notes]
    found = r.found()
    lines += ["", f"{len(found)} problem(s) found" if found else "no problems found"]
    return lines
