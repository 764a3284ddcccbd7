"""models.json (all raw figures, merged per machine id) and models.md (the tables)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

__all__ = ["merge", "render"]

SCHEMA = 1
MS = "{:.4g}"


def merge(
    path: Path, mid: str, machine: dict[str, Any], models: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The results file with this machine's entry updated: its description replaced and
    the models just run replaced; other machines and other models are kept as they are."""
    data: dict[str, Any] = {"schema": SCHEMA, "machines": {}}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise SystemExit(f"{path}: schema {data.get('schema')!r}, expected {SCHEMA}")
    entry = data["machines"].setdefault(mid, {"models": {}})
    entry["machine"] = machine
    entry["models"].update(models)
    data["machines"] = dict(sorted(data["machines"].items()))
    return data


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB"


def _num(v: Any, fmt: str = "{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def _software(sw: dict[str, Any] | None) -> str:
    if not sw:
        return ""
    pk = ", ".join(f"{p} {v}" for p, v in sw["packages"].items() if v and p != "edgeort")
    return f"Python {sw['python']}, {pk}. "


def _loads(la: dict[str, Any] | None) -> str:
    if not la or not la.get("before"):
        return "unknown"
    fmt = "/".join
    return f"{fmt(str(x) for x in la['before'])} before, {fmt(str(x) for x in la['after'])} after"


def _machine_line(m: dict[str, Any]) -> str:
    amx = "AMX" if any(f.startswith("amx") for f in m["flags"]) else "no AMX"
    pk = m["packages"]
    eps = ", ".join(f"{p} {v}" for p, v in pk.items() if p.startswith("onnxruntime-") and v)
    vm = ", VM" if m.get("hypervisor") else ""
    return (
        f"{m.get('cpu_model_raw') or m['cpu_model']} ({m['arch']}{vm}), "
        f"{m['physical_cores']} physical / {m['logical_cores']} logical cores, "
        f"{m['memory_gb']} GB, {m['os']} ({m['os_version']}); CPU flags: "
        f"{' '.join(m['flags'])} ({amx}). Python {m['python']}, onnxruntime "
        f"{pk.get('onnxruntime')}, {eps or 'no plugin EPs'}, onnx {pk.get('onnx')}, "
        f"numpy {pk.get('numpy')}."
    )


def _speed(speed: float | None, rounds: list[float] | None) -> str:
    if speed is None:
        return "-"
    if not rounds or len(rounds) < 4 or min(rounds) == max(rounds):
        return f"{speed:.3g}x"
    q1, _, q3 = statistics.quantiles(rounds, n=4)
    return f"{speed:.3g}x ({q1:.3g}-{q3:.3g})"


def _row(c: dict[str, Any], kind: str) -> str:
    lat, acc, load = c.get("latency") or {}, c.get("accuracy") or {}, c.get("load_cold") or {}
    raw = c.get("latency_session_run") or {}
    ep = c["ep"].replace("ExecutionProvider", "") + (
        " (simulated HTP on x86_64)" if c.get("simulated") else ""
    )
    speed = c.get("speedup_vs_naive")
    cells = [
        c["label"], ep, c.get("precision") or "-", _num(lat.get("median_ms"), MS),
        _num(raw.get("median_ms"), MS), _num(lat.get("p95_ms"), MS),
        _speed(speed, c.get("speedup_vs_naive_by_round")),
        _size(c.get("size_bytes")),
        _num(load.get("load_ms"), "{:.1f}"), _num(load.get("first_run_ms"), "{:.1f}"),
    ]  # fmt: skip
    if kind == "classifier":
        cells += [
            _num(acc.get("top1_accuracy"), "{:.4f}"),
            _num(acc.get("top1_agreement"), "{:.4f}"),
        ]
    else:
        cells += [_num(acc.get("embedding_cosine_mean"), "{:.5f}"),
                  _num(acc.get("embedding_cosine_min"), "{:.5f}"),
                  _num(acc.get("hidden_state_cosine_mean"), "{:.4f}") + " / "
                  + _num(acc.get("hidden_state_cosine_real_tokens_mean"), "{:.4f}")]  # fmt: skip
    if c.get("error"):
        width = len(cells)
        cells = [c["label"], ep, c.get("precision") or "-", f"failed: {c['error']}"]
        cells += [""] * (width - len(cells))
    return "| " + " | ".join(cells) + " |"


def _table(model: dict[str, Any], groups: tuple[str, ...]) -> list[str]:
    kind = model["kind"]
    acc = ("top-1 (labels)", "top-1 agreement") if kind == "classifier" else (
        "emb. cosine mean", "emb. cosine min",
        "hidden-state cosine (all / real tokens)")  # fmt: skip
    head = ["variant", "EP", "precision", "median ms", "median ms (session.run)", "p95 ms",
            "speed vs naive", "size", "load ms (cold)", "first run ms", *acc]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [_row(c, kind) for c in model["contenders"] if c["group"] in groups]
    return lines


def _recipe_notes(model: dict[str, Any]) -> list[str]:
    """What each recipe really produced (its quantization ops), and how it was called."""
    out = []
    for c in model["contenders"]:
        call = (c.get("call") or {}) if c["group"] == "recipe" else {}
        if not call or c["ep"] != "CPUExecutionProvider":
            continue
        ops = call.get("op_counts") or {}
        nodes = ops.get("nodes")
        made = ", ".join(f"{k} {v}" for k, v in ops.items() if k != "nodes") or "no quant ops"
        args = ", ".join(f"{k}={v}" for k, v in call.items() if k not in ("fn", "op_counts"))
        out.append(f"- {c['label']}: `{call.get('fn')}({args})` -> {nodes} nodes: {made}")
    return out


def _model_section(name: str, model: dict[str, Any]) -> list[str]:
    s = model["settings"]
    out = [
        f"### {model['title']}",
        "",
        f"`{model['onnx']}` ({_size(model['onnx_size_bytes'])}); accuracy on "
        f"{model['validation']['samples']} real samples of `{model['validation']['file']}`; "
        f"batch 1; latency: {s['warmup']} warm-up runs, then up to {s['runs']} runs in "
        f"{s['rounds']} interleaved rounds (time budget {s['budget_s']} s per variant); "
        f"load: median of {s['load_reps']} fresh processes. Load average (1/5/15 min) "
        f"{_loads(model.get('load_average'))}. {_software(model.get('software'))}"
        f"Measured {model['measured_at']}"
        + (" (**--quick smoke run**)" if model.get("quick") else "")
        + ".",
        "",
        *_table(model, ("baseline", "edgeort")),
        "",
    ]
    for c in model["contenders"]:
        load = c.get("load_cold") or {}
        if c["group"] == "edgeort" and load.get("verify_ms") is not None:
            rest = load["load_ms"] - load["verify_ms"]
            out.append(f"- {c['label']}: cold `edgeort.load` {load['load_ms']:.0f} ms = "
                       f"`open_bundle` (sha256 of every file) {load['verify_ms']:.0f} ms + probe, "
                       f"ranking, plugin registration and session {rest:.0f} ms")  # fmt: skip
    for target, t in model["targets"].items():
        if t["status"] != "measured":
            out.append(f"- **{target}**: {t['reason']}")
        for note in t.get("gates", []):
            out.append(f"- {target} packaging: {note}")
    if any(c["group"] == "recipe" for c in model["contenders"]):
        out += ["", "Recipes built directly with `onnxruntime.quantization` (no edgeort gate):", ""]
        out += _table(model, ("baseline", "recipe"))
        out += ["", *_recipe_notes(model)]
    return [*out, ""]


def render(data: dict[str, Any]) -> str:
    lines = [
        "# Real-model benchmark results",
        "",
        "Written by `benchmarks/run.py` from `models.json` (all raw figures). Speed vs naive ="
        " naive fp32 median / variant median, both measured in the same run (> 1: faster);"
        " in brackets the quartiles (25th-75th percentile) of the same ratio computed within"
        " each interleaved round (the spread the machine's noise leaves)."
        " Naive = the original fp32 ONNX file in a plain `onnxruntime.InferenceSession` with"
        " default options on the CPU EP.",
        "",
    ]
    for mid, entry in data["machines"].items():
        lines += [f"## Machine `{mid}`", "", _machine_line(entry["machine"]), ""]
        for name, model in entry["models"].items():
            lines += _model_section(name, model)
    return "\n".join(lines).rstrip() + "\n"
