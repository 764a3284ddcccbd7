"""Charts as inline SVG, drawn with matplotlib (the ``edgeort[report]`` extra).

matplotlib is imported here only, when a chart is drawn; the device runtime never
imports this module. Figures are made with ``matplotlib.figure.Figure`` (no pyplot, no
global backend state). Text stays text in the SVG (``svg.fonttype = none``), so the page's
fonts apply and strings from bundles are XML-escaped by matplotlib's writer.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from edgeort.errors import EdgeortError

__all__ = ["PALETTE", "accuracy_latency_svg", "op_time_svg"]

# Okabe-Ito, readable for colour-blind readers.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
INK, GRID, BOUND = "#1f2933", "#d9dee4", "#c0392b"


def _mpl() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise EdgeortError(
            "edgeort report draws its charts with matplotlib, which is not installed: "
            "pip install 'edgeort[report]'"
        ) from exc
    return matplotlib, Figure


def _plain(text: Any) -> str:
    """Text matplotlib shows literally (no mathtext from a '$' in a bundle string)."""
    return str(text).replace("$", r"\$")


def _svg(fig: Any) -> str:
    matplotlib, _ = _mpl()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "edgeort"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:] if start >= 0 else text
    svg = re.sub(r'\swidth="[^"]*pt"\s+height="[^"]*pt"', ' width="100%"', svg, count=1)
    # Inline in HTML, the namespace declarations and the RDF metadata block only add URLs.
    svg = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    return svg.strip()


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9aa5b1")
    ax.tick_params(colors=INK, labelsize=9)
    ax.grid(True, color=GRID, linewidth=0.7)
    ax.set_axisbelow(True)


def accuracy_latency_svg(
    device: Mapping[str, Any], colors: Mapping[str, str], *, font: str = "sans-serif"
) -> str | None:
    """Accuracy (y) against median latency (x) of one device's points, with the gate
    bounds drawn; None when no point has both."""
    points = [p for p in device["points"] if p["accuracy"] is not None and p["latency_ms"]]
    if not points:
        return None
    _, Figure = _mpl()
    fig = Figure(figsize=(6.4, 3.4), dpi=100)
    fig.set_facecolor("white")
    ax = fig.add_subplot()
    _style(ax)
    ys = [p["accuracy"] for p in points]
    bounds = sorted({(p["metric"] or "?", p["bound"]) for p in points if p["bound"] is not None})
    for metric, bound in bounds:
        ax.axhline(bound, color=BOUND, linestyle="--", linewidth=1.2)
        ax.annotate(
            _plain(f"gate: {metric} ≥ {bound:g}"),
            xy=(1.0, bound),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            va="bottom",
            color=BOUND,
            fontsize=8.5,
            family=font,
        )
    points = sorted(points, key=lambda p: p["latency_ms"])
    for i, p in enumerate(points):
        color = colors.get(p["variant"], "#7b8794")
        marker = "D" if p.get("simulated") else "o"
        ax.scatter(
            [p["latency_ms"]],
            [p["accuracy"]],
            s=70,
            color=color,
            marker=marker,
            edgecolors="white",
            linewidths=1.2,
            zorder=3,
        )
        if p.get("p95_ms") and p["p95_ms"] > p["latency_ms"]:
            ax.plot(
                [p["latency_ms"], p["p95_ms"]],
                [p["accuracy"]] * 2,
                color=color,
                linewidth=1.5,
                alpha=0.6,
                zorder=2,
            )
        ax.annotate(
            _plain(p["variant"]),
            (p["latency_ms"], p["accuracy"]),
            xytext=(6, 6 if i % 2 == 0 else -15),  # alternate: neighbours do not overlap
            textcoords="offset points",
            fontsize=9,
            color=INK,
            family=font,
        )
    lows = [*ys, *(b for _m, b in bounds)]
    lo, hi = min(lows), max(ys)
    pad = max((hi - lo) * 0.15, 1e-4)
    ax.set_ylim(lo - pad, hi + pad)
    xmax = max(max(p.get("p95_ms") or 0.0, p["latency_ms"]) for p in points)
    xmin = min(p["latency_ms"] for p in points)
    if xmax / xmin > 20:  # spans orders of magnitude: a log axis keeps every point apart
        ax.set_xscale("log")
        ax.set_xlim(xmin / 1.6, xmax * 3)
    else:
        ax.set_xlim(0, xmax * 1.35)
    metrics = sorted({p["metric"] or "?" for p in points})
    ax.set_xlabel("median latency (ms; line to p95 where measured)", color=INK, fontsize=9)
    ax.set_ylabel(_plain(" / ".join(metrics) + " vs fp32"), color=INK, fontsize=9)
    ax.ticklabel_format(axis="y", useOffset=False)
    fig.tight_layout()
    return _svg(fig)


def op_time_svg(
    profile: Mapping[str, Any], *, top: int = 15, font: str = "sans-serif"
) -> str | None:
    """Horizontal bars: total time per op type (largest first), with its share."""
    ops: Sequence[Mapping[str, Any]] = profile["op_types"][:top]
    if not ops:
        return None
    _, Figure = _mpl()
    height = 0.9 + 0.32 * len(ops)
    fig = Figure(figsize=(6.4, height), dpi=100)
    fig.set_facecolor("white")
    ax = fig.add_subplot()
    _style(ax)
    ax.grid(True, axis="x", color=GRID)
    ax.grid(False, axis="y")
    names = [_plain(o["op_type"]) for o in ops][::-1]
    values = [o["total_ms"] for o in ops][::-1]
    shares = [o["share"] for o in ops][::-1]
    bars = ax.barh(names, values, color=PALETTE[0], height=0.62)
    for bar, share in zip(bars, shares, strict=True):
        ax.annotate(
            f"{share:.0%}",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8.5,
            color=INK,
            family=font,
        )
    ax.set_xlim(0, max(values) * 1.15)
    ax.set_xlabel("total time in the trace (ms)", color=INK, fontsize=9)
    for label in ax.get_yticklabels():
        label.set_family(font)
    fig.tight_layout()
    return _svg(fig)
