"""The report's HTML page, rendered from :func:`edgeort.report.data.build_report`'s dict.

One self-contained file: inline CSS and inline SVG charts, no script, no external URL.
Every string from the data is HTML-escaped (bundles and results files are untrusted).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edgeort.report.charts import PALETTE, accuracy_latency_svg, op_time_svg

__all__ = ["render_html", "variant_colors"]

EP_COLORS = {
    "CPUExecutionProvider": "#9aa5b1",
    "OpenVINOExecutionProvider": "#0072B2",
    "QNNExecutionProvider": "#009E73",
    "CoreMLExecutionProvider": "#CC79A7",
    "NnapiExecutionProvider": "#E69F00",
    "DmlExecutionProvider": "#56B4E9",
    "TensorrtExecutionProvider": "#6a9f00",
    "CUDAExecutionProvider": "#4d7c0f",
}
VERIFIED = {
    "real": ("real EP", "ok"),
    "simulated": ("simulated", "sim"),
    "runtime": ("other runtime", "rt"),
    "substitute": ("substitute EP", "warn"),
    "unverified": ("unverified", "bad"),
}

CSS = """
:root{--ink:#1f2933;--mute:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--ok:#1e7d4f;
--okbg:#e3f5ea;--bad:#b42318;--badbg:#fde8e6;--sim:#8a4b00;--simbg:#fff1d6;--rt:#2d4b9a;
--rtbg:#e6ecfb;--warn:#8a4b00;--warnbg:#fff1d6}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
header{background:#102a43;color:#f0f4f8;padding:22px 28px}
header .in{max-width:1180px;margin:0 auto}
header h1{margin:0 0 4px;font-size:22px;font-weight:650}
header p{margin:0;color:#bcccdc}
header .eyebrow{font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:#9fb3c8}
h2{font-size:17px;margin:30px 0 10px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:14px;margin:0 0 8px}
.lead{color:var(--mute);margin:0 0 12px}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);
border-radius:8px;overflow:hidden}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f0f4f8;font-size:12px;text-transform:uppercase;letter-spacing:.03em;
color:var(--mute)}
tr:last-child td{border-bottom:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
.sw{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;
vertical-align:baseline}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
white-space:nowrap}
.ok{color:var(--ok);background:var(--okbg)}.bad{color:var(--bad);background:var(--badbg)}
.sim{color:var(--sim);background:var(--simbg)}.rt{color:var(--rt);background:var(--rtbg)}
.warn{color:var(--warn);background:var(--warnbg)}
.small{font-size:12.5px;color:var(--mute)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px}
.wide{grid-template-columns:repeat(auto-fill,minmax(520px,1fr))}
.card table{font-size:12.5px;margin-top:8px}.card td{overflow-wrap:break-word}
.card th,.card td{padding:5px 7px}
.nw{white-space:nowrap}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.card svg{display:block;max-width:100%;height:auto}
ul.gates{margin:0;padding-left:0;list-style:none}
ul.gates li{margin:0 0 6px}
.strip{display:flex;height:26px;border-radius:5px;overflow:hidden;margin:6px 0 4px;
border:1px solid var(--line)}
.strip span{display:block;min-width:2px;border-right:1px solid #fff}
.strip span:last-child{border-right:0}
.legend span{margin-right:14px;white-space:nowrap}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;
vertical-align:-1px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}
dl.kv dt{color:var(--mute)}dl.kv dd{margin:0;min-width:0;overflow-wrap:anywhere}
.row{margin:0 0 14px}
footer{color:var(--mute);font-size:12px;margin-top:36px}
"""


def e(value: Any) -> str:
    """HTML-escaped text of ``value`` (quotes too: safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def variant_colors(data: Mapping[str, Any]) -> dict[str, str]:
    names = [v["name"] for v in data["variants"]]
    for d in data["devices"]:
        names += [p["variant"] for p in d["points"] if p["variant"] not in names]
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def ep_color(ep: str) -> str:
    if ep in EP_COLORS:
        return EP_COLORS[ep]
    digest = int(hashlib.sha256(ep.encode()).hexdigest()[:4], 16)
    return PALETTE[digest % len(PALETTE)]


def _color(colors: Mapping[str, str], point: Mapping[str, Any]) -> str:
    return colors.get(point["variant"], "#7b8794")


def _short_ep(ep: str | None) -> str:
    return (ep or "").removesuffix("ExecutionProvider")


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def _acc(x: float | None) -> str:
    return "–" if x is None else (f"{x:.6f}" if abs(x) < 10 else f"{x:.6g}")


def _ms(x: float | None) -> str:
    return "–" if x is None else (f"{x:.3f} ms" if x < 10 else f"{x:.1f} ms")


def _accuracy_cell(acc: Mapping[str, Any] | None) -> str:
    if not acc:
        return '<span class="badge bad">not measured</span>'
    passed = acc.get("passed")
    badge = (
        '<span class="badge ok">pass</span>'
        if passed is True
        else '<span class="badge bad">FAIL</span>'
        if passed is False
        else '<span class="badge warn">?</span>'
    )
    out = (
        f"<span class='nw'>{badge} {e(acc['metric'])} <b>{e(_acc(acc['value']))}</b>"
        f" <span class='small'>bound {e(_fmt(acc['bound'], 6))}</span></span>"
    )
    if acc.get("top1_accuracy") is not None:
        ref = acc.get("fp32_top1_accuracy")
        out += f"<br><span class='small nw'>top-1 {acc['top1_accuracy']:.2%}"
        out += f" (fp32 {ref:.2%})</span>" if ref is not None else "</span>"
    return out


def _variants(data: Mapping[str, Any], colors: Mapping[str, str]) -> str:
    rows = []
    for v in data["variants"]:
        label, cls = VERIFIED.get(v["verified"]["kind"], ("?", "warn"))
        lat = v["latency"]
        latency = (
            f"{_ms(lat['ms_median'])}<br><span class='small'>on {e(_short_ep(lat['ep']))}</span>"
            if lat
            else "<span class='small'>not measured</span>"
        )
        recipe = f"<br><span class='small'>{e(v['recipe'])}</span>" if v["recipe"] else ""
        rows.append(
            "<tr>"
            f"<td class='nw'><span class='sw' style='background:{colors[v['name']]}'></span>"
            f"<b class='mono nw'>{e(v['name'])}</b></td>"
            f"<td>{e(v['target'])}<br><span class='small'>device {e(v['device'])}</span></td>"
            f"<td class='mono' title='{e(v['ep'])}'>{e(_short_ep(v['ep']))}"
            f"<br><span class='small'>{e(v['ep_package'])}</span></td>"
            f"<td>{e(v['precision'])}{recipe}</td>"
            f"<td class='num'>{_size(v['size_bytes'])}</td>"
            f"<td>{_accuracy_cell(v['accuracy'])}</td>"
            f"<td><span class='badge {cls}'>{e(label)}</span><br>"
            f"<span class='small'>{e(v['verified']['text'])}</span></td>"
            f"<td class='num'>{latency}</td>"
            "</tr>"
        )
    table = (
        "<table><thead><tr><th>variant</th><th>target</th><th>EP</th><th>precision</th>"
        "<th>size</th><th>accuracy vs bound</th><th>verified</th><th>latency (bundle)</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    cards = []
    for v in data["variants"]:
        items = "".join(
            f"<li><span class='badge {_decision_cls(g.get('decision', ''))}'>"
            f"{e(g.get('gate', '?'))}: {e(g.get('decision', '?'))}</span> {e(g.get('reason', ''))}"
            + (f" <span class='small'>({e(g['recipe'])})</span>" if g.get("recipe") else "")
            + "</li>"
            for g in v["gates"]
        )
        prepare = "".join(f"<li class='small'>prepare: {e(p)}</li>" for p in v["prepare"])
        cards.append(
            f"<div class='card'><h3><span class='sw' style='background:{colors[v['name']]}'>"
            f"</span><span class='mono'>{e(v['name'])}</span></h3>"
            f"<ul class='gates'>{items or '<li class=small>no gate decisions recorded</li>'}"
            f"{prepare}</ul></div>"
        )
    return (
        "<section id='variants'><h2>Variants</h2>"
        "<p class='lead'>What each variant is, how far it is from the fp32 model against its "
        "profile's accuracy bound, and where that was verified.</p>"
        f"{table}<h3 style='margin-top:18px'>Gate decisions</h3>"
        f"<div class='grid'>{''.join(cards)}</div></section>"
    )


def _decision_cls(decision: str) -> str:
    return {"pass": "ok", "keep": "ok", "fail": "bad", "replace": "warn", "fallback": "warn",
            "skip": "sim"}.get(decision, "rt")  # fmt: skip


def _devices(data: Mapping[str, Any], colors: Mapping[str, str]) -> str:
    cards = []
    for d in data["devices"]:
        svg = accuracy_latency_svg(d, colors)
        rows = "".join(
            f"<tr><td class='nw'><span class='sw' style='background:{_color(colors, p)}'></span>"
            f"<span class='mono nw'>{e(p['variant'])}</span>"
            + (" <span class='badge sim'>simulated</span>" if p.get("simulated") else "")
            + f"</td><td class='num'>{_ms(p['latency_ms'])}</td>"
            f"<td class='num'>{_ms(p.get('p95_ms'))}</td>"
            f"<td class='num'>{e(_acc(p['accuracy']))}</td>"
            f"<td class='small'>{e(_short_ep(p.get('ep')))}"
            + (f" · runtime {e(p['runtime'])}" if p.get("runtime") else "")
            + (f" · ORT {e(p['ort'])}" if p.get("ort") else "")
            + f"<br>{e(p['source'])}</td></tr>"
            for p in d["points"]
        )
        notes = "".join(f"<li>{e(n)}</li>" for n in d["notes"])
        cards.append(
            f"<div class='card'><h3>{e(d['label'])}</h3>"
            + (svg or "<p class='small'>no point has both an accuracy and a latency</p>")
            + "<table><thead><tr><th>variant</th><th>median</th><th>p95</th><th>accuracy</th>"
            f"<th>EP · source</th></tr></thead><tbody>{rows}</tbody></table>"
            + (f"<ul class='small'>{notes}</ul>" if notes else "")
            + "</div>"
        )
    body = (
        "".join(cards)
        or "<p class='small'>no latency measured (none in the bundle, no --bench file)</p>"
    )
    return (
        "<section id='tradeoff'><h2>Accuracy vs latency</h2>"
        "<p class='lead'>One chart per device that measured latency: the bundle's own record "
        "from packaging and every <code>--bench</code> file (local, runtime or farm rows). "
        "The dashed line is the gate bound; a variant below it would not ship. "
        "Diamonds mark simulated EPs, whose latency says nothing about the device.</p>"
        f"<div class='grid wide'>{body}</div></section>"
    )


def _profiles(data: Mapping[str, Any]) -> str:
    if not data["profiles"]:
        return (
            "<section id='time'><h2>Where time goes</h2><p class='small'>no profile trace given "
            "(<code>edgeort profile BUNDLE</code> writes one; pass it with "
            "<code>--profile</code>)</p></section>"
        )
    cards = []
    for p in data["profiles"]:
        svg = op_time_svg(p) or ""
        shares = ", ".join(f"{e(k)} {v:.0%}" for k, v in p["ep_share"].items())
        meta = [f"EP {e(p['ep'])}" if p["ep"] else "", f"{p['runs']} runs" if p["runs"] else ""]
        if p["run_avg_ms"]:
            meta.append(f"{_ms(p['run_avg_ms'])} per run")
        cards.append(
            f"<div class='card'><h3 class='mono'>{e(p['label'])}</h3>"
            f"<p class='small'>{' · '.join(m for m in meta if m)}"
            + (f"<br>node time by EP: {shares}" if shares else "")
            + (f"<br>{e(p['note'])}" if p["note"] else "")
            + f"</p>{svg}</div>"
        )
    return (
        "<section id='time'><h2>Where time goes</h2><p class='lead'>Time per op type from ORT's "
        f"profiler trace.</p><div class='grid wide'>{''.join(cards)}</div></section>"
    )


def _segments(nodes: Sequence[Mapping[str, str]]) -> Iterable[tuple[str, list[Mapping[str, str]]]]:
    run: list[Mapping[str, str]] = []
    for node in nodes:
        if run and node["ep"] != run[-1]["ep"]:
            yield run[-1]["ep"], run
            run = []
        run.append(node)
    if run:
        yield run[-1]["ep"], run


def _placement(data: Mapping[str, Any]) -> str:
    if not data["placement"]:
        return (
            "<section id='placement'><h2>Placement</h2><p class='small'>not computed "
            "(--no-placement)</p></section>"
        )
    eps: list[str] = []
    blocks = []
    for s in data["placement"]:
        spans = []
        for ep, run in _segments(s["nodes"]):
            if ep not in eps:
                eps.append(ep)
            names = ", ".join(f"{n['name']} ({n['op_type']})" for n in run[:25])
            more = f" … +{len(run) - 25}" if len(run) > 25 else ""
            spans.append(
                f"<span style='flex:{len(run)};background:{ep_color(ep)}' "
                f"title='{e(ep)}: {e(names + more)}'></span>"
            )
        fallback = ", ".join(f"{e(k)} ×{v}" for k, v in s["fallback_ops"].items())
        verdict_cls = {"YES": "ok", "MAYBE": "warn", "NO": "bad"}.get(s["verdict"], "rt")
        blocks.append(
            "<div class='row'>"
            f"<b class='mono'>{e(s['variant'])}</b> on <span class='mono'>{e(s['ep'])}</span>"
            f" <span class='small'>· {e(s['method_text'])}</span>"
            f"<div class='strip'>{''.join(spans)}</div>"
            f"<span class='small'>{s['nodes_on_ep']}/{s['nodes_total']} nodes on the EP "
            f"({s['pct_on_ep']:g}%), {s['partitions']} partition(s)"
            + (f"; falls back: {fallback}" if fallback else "")
            + f"; ORT usability verdict <span class='badge {verdict_cls}'>{e(s['verdict'])}</span>"
            + (f"<br>{e(s['note'])}" if s["note"] else "")
            + f"<br>source: {e(s['source'])}</span></div>"
        )
    legend = "".join(f"<span><i style='background:{ep_color(x)}'></i>{e(x)}</span>" for x in eps)
    return (
        "<section id='placement'><h2>Placement</h2><p class='lead'>Each strip is one variant's "
        "graph in node order, coloured by the EP that runs each node (hover for names). "
        "Run-time placement comes from ORT on this machine; elsewhere the offline partition "
        "report of <code>edgeort doctor</code>.</p>"
        f"<div class='card'><p class='legend small'>{legend}</p>{''.join(blocks)}</div></section>"
    )


def _machines(data: Mapping[str, Any]) -> str:
    cards = []
    for m in data["machines"]:
        s = m["summary"] or {}
        fields = [
            ("role", "; ".join(m["roles"])),
            ("CPU", s.get("cpu_model")),
            ("arch", s.get("arch")),
            ("OS", s.get("os_version") or s.get("os")),
            (
                "cores",
                f"{s['physical_cores']} physical / {s.get('logical_cores', '?')} logical"
                if "physical_cores" in s
                else None,
            ),
            ("memory", f"{s['memory_total'] / 2**30:.1f} GiB" if "memory_total" in s else None),
            ("accelerators", ", ".join(s["accelerators"]) if "accelerators" in s else None),
            ("EPs with a device", ", ".join(s["eps"]) if "eps" in s else None),
            ("ORT", s.get("ort_version")),
            ("fingerprint", s.get("fingerprint")),
        ]
        rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in fields if v)
        if not m["summary"]:
            rows += "<dt>probe</dt><dd>not recorded with these figures</dd>"
        elif set(s) <= {"summary", "fingerprint"}:
            rows += "<dt>probe</dt><dd>only the fingerprint is recorded</dd>"
        cards.append(f"<div class='card'><h3>{e(m['label'])}</h3><dl class='kv'>{rows}</dl></div>")
    return (
        "<section id='machines'><h2>Machines</h2><p class='lead'>Every machine that contributed "
        f"figures to this page.</p><div class='grid wide'>{''.join(cards)}</div></section>"
    )


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page for ``data`` (from :func:`edgeort.report.data.build_report`)."""
    colors = variant_colors(data)
    b = data["bundle"]
    notes = "".join(f"<li>{e(n)}</li>" for n in data["notes"])
    subtitle = f"version {b['version']} · {b['variants']} variant(s)"
    if b.get("source_model"):
        subtitle += f" · from {b['source_model']}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>edgeort report: {e(b['name'])}</title><style>{CSS}</style></head><body>"
        "<header><div class='in'><p class='eyebrow'>edgeort report</p>"
        f"<h1>{e(b['name'])}</h1><p>{e(subtitle)} · "
        f"<span class='mono'>{e(b['path'])}</span></p></div></header><main>"
        + _variants(data, colors)
        + _devices(data, colors)
        + _profiles(data)
        + _placement(data)
        + _machines(data)
        + (
            f"<section id='notes'><h2>Notes</h2><ul class='small'>{notes}</ul></section>"
            if notes
            else ""
        )
        + f"<footer>Made by {e(data['generator'])} (<code>edgeort report</code>). "
        "Everything on this page is inline; it loads nothing.</footer></main></body></html>\n"
    )
