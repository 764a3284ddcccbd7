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
    if m.get("ep_refused"):
        why = f" (the {m['ep']} simulator refused it: {m['ep_refused']})"
    return (
        f"{m['precision']}, verified on {where}{why[:120]}; {m['metric']} {_f(m.get('value'))}"
    ).replace("|", "/")


def _tuned(r: dict[str, Any]) -> str:
    """The 'edgeort tuned' cells: ms (x), and what ``edgeort tune`` picked."""
    if r.get("tune_error"):
        return "FAILED: " + r["tune_error"].replace("|", "/")[:160]
    t = r.get("tune")
    if not t:
        return "not run"
    saved = t.get("saved") or {}
    spin = (saved.get("session_options") or {}).get("session.intra_op.allow_spinning")
    picked = ", ".join(
        [
            f"threads={saved.get('intra_op_threads')}",
            {"0": "no spinning", "1": "spinning"}.get(str(spin), f"spinning {spin}"),
            f"opt {saved.get('graph_optimization_level')}",
            str(saved.get("execution_mode")),
        ]
    )
    return (
        f"{picked} ({t.get('evaluated')} of {t.get('space_size')} settings in "
        f"{_f(t.get('elapsed_s'), 0)} s; tune's own ratio {_f(t.get('speedup_vs_default'), 2)}x)"
    )


def _encoder_parts(
    x: float | None, s: dict[str, Any], tuned: bool = False
) -> list[tuple[str, bool]]:
    when = " after `edgeort tune`" if tuned else ""
    return [
        (f">= {ENCODER_SPEEDUP}x{when} ({_f(x, 2)}x)", (x or 0) >= ENCODER_SPEEDUP),
        (f"cosine mean >= 0.997 ({_f(s.get('mean'), 4)})", s.get("mean", 0) >= 0.997),
        (f"min >= 0.99 ({_f(s.get('min'), 4)})", s.get("min", 0) >= 0.99),
    ]


def _words(parts: list[tuple[str, bool]]) -> tuple[bool, str]:
    ok = all(met for _, met in parts)
    met = [p for p, m in parts if m]
    missed = [p for p, m in parts if not m]
    if ok:
        return True, "meets " + ", ".join(met)
    return False, "misses " + ", ".join(missed) + ("; meets " + ", ".join(met) if met else "")


def _target(r: dict[str, Any]) -> str:
    """Issue 9's figure for this row, met or missed, and why (from the gate records).
    A target met only by the bundle after ``edgeort tune`` says so."""
    ev = r.get("edgeort") or {}
    speedup = r.get("speedup") or {}
    x, xt = speedup.get("edgeort"), speedup.get("tuned")
    fam = r.get("family_expected", "").split(":")[0]
    if fam == "encoder":
        s = r.get("edgeort_sentence_cosine") or {}
        ok, head = _words(_encoder_parts(x, s))
        if not ok and xt is not None:
            st = r.get("tuned_sentence_cosine") or {}
            ok_t, head_t = _words(_encoder_parts(xt, st, tuned=True))
            if ok_t:
                return f"{head_t} (untuned {_f(x, 2)}x)"
            head = head.replace(f"({_f(x, 2)}x)", f"({_f(x, 2)}x, tuned {_f(xt, 2)}x)")
    elif fam in ("classifier", "detector"):
        ok = (x or 0) >= CNN_SPEEDUP
        head = f"{'meets' if ok else 'misses'} >= {CNN_SPEEDUP}x"
        if not ok and xt is not None:
            if xt >= CNN_SPEEDUP:
                return (
                    f"meets >= {CNN_SPEEDUP}x after `edgeort tune` ({_f(xt, 2)}x; "
                    f"untuned {_f(x, 2)}x)"
                )
            head += f" ({_f(x, 2)}x, tuned {_f(xt, 2)}x)"
    else:
        head = "no speed target"
        if (x or 0) >= 1.0:
            return head
        ok = False
    if ok:
        return head
    gates = ev.get("gates") or []
    fails = [g for g in gates if g.get("gate") == "accuracy" and g.get("decision") == "fail"]
    slower = [g for g in gates if g.get("gate") == "speed" and g.get("decision") == "replace"]
    if ev.get("precision") == "fp32" and slower:
        why = "int8 passed the gate but ran slower than fp32 on its EP: " + slower[0]["reason"]
    elif ev.get("precision") == "fp32" and fails:
        why = f"no int8 recipe passed the gate ({len(fails)} tried; first: {fails[0]['reason']})"
    elif ev.get("precision") == "fp32" and r.get("measured"):
        why = "fp32 shipped; slower than naive in this run (see 'Why, measured')"
    elif ev.get("precision") == "fp32":
        why = "fp32 shipped; slower than naive in this run (cause not measured separately:"
        why += " benchmarks/results/overhead.md has the per-call run() overhead)"
    elif fam == "encoder":
        why = (
            f"{ev.get('precision')} shipped; at batch 1 the int8 MatMuls gain little from the "
            "second thread that fp32 uses (see 'Why, measured' and the tuned column)"
        )
    else:
        why = f"{ev.get('precision')} shipped at {_f(x, 2)}x on this shared 2-core machine"
    floor = r.get(f"fp32_noise_{r.get('metric')}")
    if floor is not None and fails:
        why += (
            f"; fp32 itself scores {_f(floor)} on the same images with +-half a pixel level "
            "of noise"
        )
    return f"{head}: {why}".replace("|", "/")


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
        f"{data['rounds']} interleaved rounds of at least {data['runs_per_round']} runs (more for "
        f"fast models: a round lasts >= {data.get('min_round_s', 0)} s); x = naive fp32 / "
        "that column; a 30 ms pause and one untimed run before each block (no thread pool "
        "spins into the next runner's timing). "
        + (
            f"Load average at the start: {' / '.join(map(str, m['load_before']))}. "
            if m.get("load_before")
            else ""
        )
        + "The machine is a shared 2-core VM, so absolute ms are noisy; the ratios come from "
        "the same interleaved rounds. Accuracy: the family's task "
        "metric against naive fp32 on the validation data (1.000 = same answers). "
        + (
            "*edgeort tuned*: the same bundle after `edgeort tune` (its Python API, budget "
            f"{data['tune_budget_s']:g} s, the first validation sample as input, a private "
            "tune cache), loaded again by `edgeort.load`, which reads the tune cache; timed "
            "in the same rounds, its task metric measured like the others."
            if data.get("tune_budget_s")
            else "`edgeort tune` was not run (`--no-tune`)."
        ),
        "",
        "| model | wheel | family (detected) | metric | naive fp32 ms | plain-ORT recipe ms (x) "
        "| plain-ORT metric | edgeort ms (x) | edgeort metric | edgeort variant "
        "| edgeort tuned ms (x), metric | `edgeort tune` picked | issue 9 target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        if "error" in r:
            lines.append(f"| {r['model']} | `{r['package']}` | ERROR: {r['error']} |||||||||")
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
        tuned_ms = (
            f"{_f(ms['tuned'], 2)} ({_f(x.get('tuned'), 2)}x), {metric} "
            f"{_f(r.get(f'tuned_{metric}'))}"
            if "tuned" in ms
            else "-"
        )
        lines.append(
            f"| {r['model']} | `{r['package']}` | {fam} | {metric} | {_f(ms.get('naive'), 2)} "
            f"| {_f(ms.get('recipe'), 2)} ({_f(x.get('recipe'), 2)}x) | "
            f"{_f(r.get(f'recipe_{metric}'))} | {_f(ms.get('edgeort'), 2)} "
            f"({_f(x.get('edgeort'), 2)}x) | {_f(r.get(f'edgeort_{metric}'))} | "
            f"{variant.replace('|', '/')} | {tuned_ms} | {_tuned(r)} | {_target(r)} |"
        )
    enc = [r for r in data["rows"] if "edgeort_sentence_cosine" in r]
    if enc:
        lines += ["", "Sentence embeddings (mean-pooled over real tokens, as the encoder is used):"]
        for r in enc:
            e, p = r["edgeort_sentence_cosine"], r.get("recipe_sentence_cosine", {})
            t = r.get("tuned_sentence_cosine")
            tuned = f"; edgeort tuned mean {_f(t['mean'], 4)} / min {_f(t['min'], 4)}" if t else ""
            lines.append(
                f"- {r['model']}: edgeort mean {_f(e['mean'], 4)} / min {_f(e['min'], 4)}"
                f"{tuned}; plain-ORT mean {_f(p.get('mean'), 4)} / min {_f(p.get('min'), 4)}"
            )
    reruns = [f"{r['model']} ({r['rerun']})" for r in data["rows"] if r.get("rerun")]
    if reruns:
        lines += [
            "",
            f"One script, several runs: the table's first run ({data['when']}) used int8 "
            "activations (S8S8) in the CPU profiles' CNN recipes; these rows were measured "
            "again, by the same script, after the switch to U8S8 (and a runner fix feeding "
            f"0-d inputs as arrays): {', '.join(reruns)}.",
        ]
    lines += [
        "", "## Mobile targets (`--shape`)", "",
        "`edgeort package -t qnn` (the HTP simulator when it loads the variant) and "
        "`-t nnapi --elsewhere`, with the zoo's fixed `--shape`s (and `--freeze` where the "
        "model switches on an input, e.g. silero-vad's sample rate) and `--keep-going`, so "
        "a variant the QNN simulator refuses is still written, recorded as refused, and "
        "verified on the CPU EP.", "",
        "| model | qnn | nnapi |", "|---|---|---|",
    ]  # fmt: skip
    for r in data["rows"]:
        if "error" not in r:
            lines.append(f"| {r['model']} | {_mobile(r, 'qnn')} | {_mobile(r, 'nnapi')} |")
    measured = [r for r in data["rows"] if r.get("measured")]
    if measured:
        lines += ["", "## Why, measured", ""]
        lines += [f"- {r['model']}: {r['measured']}" for r in measured]
    lines += ["", "## Recipes", ""]
    for r in data["rows"]:
        if r.get("recipe_error"):
            lines.append(f"- {r['model']}: the plain-ORT recipe failed: {r['recipe_error'][:200]}")
    for r in data["rows"]:
        if "recipe" in r:
            lines.append(f"- {r['model']}: plain-ORT `{r['recipe']}`")
    return "\n".join(lines) + "\n"
