"""Build, verify and choose one target's variant (steps 2-6 of the pipeline).

Per target: prepare the fp32 model (fixed shapes when the profile needs them), run the
fp32 reference on the CPU EP, fuse transformers, build every recipe the profile lists for
the model family, verify each against the reference on the target's EP (or the CPU EP,
recorded), gate, fall back when none passes, and apply the speed gate.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeort.errors import PackageError
from edgeort.pack import evaluate, gates, optimize, ortformat, quantize, sensitivity
from edgeort.pack.data import Dataset
from edgeort.pack.family import Family
from edgeort.pack.gates import Gate, GateRecord
from edgeort.pack.load import graphs_in
from edgeort.pack.metrics import MetricFn, Metrics, compare, padding_mask
from edgeort.profiles import Profile, Recipe

__all__ = ["Candidate", "TargetOutcome", "TargetWork", "build_target", "task_compare"]

log = logging.getLogger(__name__)

EXCLUDE_FRACTIONS = (0.0, 0.1, 0.3)  # of the ranked nodes; 0.0 = just the worst one
# CPU EP runtime fusions whose fused kernel can be slower than the ops it replaces: each is
# tried off for the chosen variant, re-verified and timed against it, and kept off only
# when faster by FUSION_MARGIN. onnxruntime 1.32, all-MiniLM-L6-v2 dynamic int8, one
# thread: the 12 SkipLayerNormalization nodes took 1375 us a run, the Add +
# LayerNormalization they replace 314 us (issue 9).
SLOW_FUSIONS = {"SkipLayerNormFusion": "LayerNormalization"}  # optimizer: op it fuses
DISABLE_OPTIMIZERS = "optimization.disable_specified_optimizers"
FUSION_MARGIN = 0.03
FUSION_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Candidate:
    recipe: Recipe
    label: str
    precision: str
    model_file: Path
    extra_files: tuple[Path, ...]
    quantized_from: Path  # the float model the recipe was applied to
    built: Path  # the recipe's output before offline optimization / ORT format
    metrics: Metrics
    gate: Gate
    on_ep: str
    on_ep_reason: str
    notes: tuple[str, ...] = ()
    latency_ms: float | None = None
    ep_refused: str = ""  # ORT's reason when the target's EP, present here, refused it
    runtime: dict[str, Any] | None = None  # the target runtime it was verified in
    # session config entries the variant carries (a runtime fusion measured slower, off)
    session_config: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TargetWork:
    """What one target gets from the run: its prepared model, data and reference."""

    profile: Profile
    family: str
    fp32: Path  # prepared (fixed shapes where needed), before fusion
    base: Path  # fp32 after fusion: what recipes start from
    fused_stats: dict[str, int]
    verify_data: Dataset
    data_kind: str  # validation | calibration | synthetic
    calibration: Dataset | None
    reference: list[np.ndarray]
    reference_metrics: Metrics
    work: Path
    max_drop: float | None
    measure_speed: bool
    notes: tuple[str, ...] = ()
    pre_processed: dict[str, Path] = field(default_factory=dict)
    keep_going: bool = False  # an EP refusal is recorded (variant verified on CPU), not fatal
    runtimes: Any = None  # edgeort.pack.inruntime.RuntimeVerifier, or None
    min_ort: str | None = None  # --min-ort: the oldest ORT every variant must load in
    task: Family | None = None  # what the model does: recipe and gate metric
    metric: str | MetricFn | None = None  # the user's metric, replacing the family's
    frozen: dict[str, Any] = field(default_factory=dict)  # --freeze: input -> dtype, value

    def check(self, outputs: list[np.ndarray]) -> tuple[Metrics, Gate]:
        """``outputs`` against the fp32 reference, with the task metric, and the
        profile's accuracy gate on them."""
        metrics = task_compare(self.reference, outputs, self.verify_data, self.task, self.metric)
        gate = gates.accuracy_gate(
            metrics, self.profile.verify, reference=self.reference_metrics,
            max_drop=self.max_drop,
        )  # fmt: skip
        return metrics, gate

    def recipes(self) -> tuple[Recipe, ...]:
        """The profile's recipes for the model's family (``detector``...), else for its
        recipe family (``cnn``, ``transformer``, ``default``)."""
        model = self.profile.model
        own = model.recipes.get(self.task.name) if self.task is not None else None
        return tuple(own) if own else model.recipes_for(self.family)


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    work: TargetWork
    chosen: Candidate
    choice: evaluate.EpChoice
    gates: tuple[GateRecord, ...]
    fp32_latency_ms: float | None


Emit = Callable[..., None]  # (step, message, kind="progress")

SHOWN = frozenset({"fail", "replace", "fallback", "cpu", "refused"})  # decisions warned about


class _Builder:
    def __init__(self, work: TargetWork, emit: Emit) -> None:
        self.w = work
        self.emit = emit
        self.choice = evaluate.choose_ep(work.profile)
        self.gates: list[GateRecord] = []
        self._count = 0
        self._opset_note = ""
        self._opset_failed = ""
        self.remote = None
        if work.runtimes is not None:
            runs_here = self.choice.on_ep == self.choice.wanted
            self.remote = work.runtimes.pick(
                work.profile, runs_here, lambda message: emit("runtime", message)
            )
        if self.remote is not None:  # the EP runs in a target runtime
            from edgeort.pack.inruntime import simulated_here

            ep, simulated = work.profile.runtime.ep, simulated_here(work.profile)
            why = f"verified in runtime {self.remote.name}"
            self.choice = evaluate.EpChoice(ep, ep, why, simulated)
            self.record(GateRecord("verify", "runtime", self.choice.reason))
        elif self.choice.reason:
            self.record(GateRecord("verify", "cpu", self.choice.reason))

    def record(self, rec: GateRecord) -> None:
        """Keep a gate decision, and show the ones worth a warning when they happen."""
        self.gates.append(rec)
        if rec.decision in SHOWN:
            self.emit("verify", f"{rec.gate}: {rec.reason}", "warning")

    # -- building ------------------------------------------------------------------
    def _source_for(self, recipe: Recipe) -> Path:
        if recipe.mode not in ("dynamic", "static"):
            return self.w.base
        if "pre" not in self.w.pre_processed:
            from edgeort.pack.prepare import pre_process

            prepared = pre_process(self.w.base, self.w.work / "preprocessed.onnx")
            self.w.pre_processed["pre"] = prepared.path
            self.record(GateRecord("prepare", "note", "; ".join(prepared.notes)))
        return self.w.pre_processed["pre"]

    def build(self, recipe: Recipe, label: str) -> Candidate:
        self._count += 1
        step_dir = self.w.work / f"c{self._count}"
        step_dir.mkdir(parents=True, exist_ok=True)
        self.emit("quantize", f"building {label}")
        source = self._source_for(recipe)
        source, recipe, opset_notes = self._opset_for(source, recipe)
        built = quantize.apply_recipe(
            source, recipe, step_dir / "built.onnx", self.w.calibration,
            keep_head_float=self.w.task is not None and self.w.task.name == "detector",
        )  # fmt: skip
        built = _honest_precision(built)
        model, extra, notes = self._finish(built, step_dir)
        notes = (*opset_notes, *notes)
        return self._verify(recipe, label, built, source, model, extra, notes)

    def _opset_for(self, source: Path, recipe: Recipe) -> tuple[Path, Recipe, tuple[str, ...]]:
        """Per-channel QDQ needs opset 13: upgrade an older model (onnx.version_converter),
        or, when that fails, fall back to per-tensor -- and say which."""
        from edgeort.pack import prepare

        if not (recipe.per_channel and recipe.mode in ("static", "qnn")):
            return source, recipe, ()
        if recipe.mode == "static" and recipe.format != "qdq":
            return source, recipe, ()
        need = prepare.PER_CHANNEL_QDQ_OPSET
        key = f"opset{need}:{source}"
        if key not in self.w.pre_processed:
            import onnx

            current = prepare.default_opset(onnx.load_model(str(source), load_external_data=False))
            if current >= need:
                self.w.pre_processed[key] = source
            else:
                out = self.w.work / f"opset{need}.onnx"
                done = prepare.upgrade_opset(source, out, need)
                if isinstance(done, str):
                    self._opset_failed = done
                    self.w.pre_processed[key] = Path()
                else:
                    self.w.pre_processed[key] = done.path
                    self._opset_note = f"{done.notes[0]}: per-channel QDQ needs opset {need}"
        upgraded = self.w.pre_processed[key]
        if upgraded == source:
            return source, recipe, ()
        if upgraded != Path():
            return upgraded, recipe, (self._opset_note,)
        why = f"per-tensor instead of per-channel: {self._opset_failed}"
        self.record(GateRecord("prepare", "note", why))
        return source, replace(recipe, per_channel=False), (why,)

    def _finish(
        self, built: quantize.Built, step_dir: Path
    ) -> tuple[Path, tuple[Path, ...], tuple[str, ...]]:
        prep = self.w.profile.model
        notes = list(built.notes)
        ort_format = prep.ort_format
        if self.w.min_ort:  # --min-ort: loadable by that older ORT (edgeort.pack.compat)
            from edgeort.pack import compat

            built, ort_format = compat.fit(built, self.w.min_ort, self.w.profile.name, notes)
        level, why = optimize.portable_level(
            prep.offline_optimization, ep=self.w.profile.runtime.ep, precision=built.precision
        )
        if why:
            notes.append(why)
        if ort_format:
            self.emit("convert", "converting to ORT format")
            out = ortformat.convert_to_ort(built.path, step_dir / "ort", level=level)
            final = out.model.rename(step_dir / "ort" / "model.ort")
            notes.append(f"ORT format, optimization level {level}, runtime optimizations saved")
            return final, (out.config,), tuple(notes)
        target = step_dir / "model.onnx"
        optimized = optimize.offline_optimize(built.path, target, level)
        if optimized != target:  # level none: the recipe's file as is (kept for fallbacks)
            shutil.copyfile(built.path, target)
            optimized = target
        notes.append(f"offline optimization: {level}")
        return optimized, (), tuple(notes)

    # -- verifying -----------------------------------------------------------------
    def _verify(
        self, recipe: Recipe, label: str, built: quantize.Built, source: Path,
        model: Path, extra: tuple[Path, ...], notes: tuple[str, ...],
    ) -> Candidate:  # fmt: skip
        if self.remote is not None:
            return self._verify_remote(recipe, label, built, source, model, extra, notes)
        self.emit("verify", f"verifying {label} on {self.choice.on_ep}")
        on_ep, reason = self.choice.on_ep, self.choice.reason
        refused = ""
        try:
            session = evaluate.make_session(model, self.choice, self.w.profile)
        except evaluate.SessionRefused as exc:
            refused = exc.reason
            where = "its simulator here" if self.choice.simulated else "this machine"
            message = (
                f"target {self.w.profile.name}: {on_ep} is installed but refused {label} "
                f"on {where}: {refused}"
            )
            if not self.w.keep_going:
                raise PackageError(
                    f"{message}; the variant would not run on {on_ep} (pass --keep-going to "
                    "write the other targets, this one recorded as refused)",
                    target=self.w.profile.name,
                ) from None
            log.info("%s", message)
            on_ep, reason = evaluate.CPU, f"{self.choice.on_ep} refused it here: {refused}"
            cpu = replace(self.choice, on_ep=evaluate.CPU)
            session = evaluate.make_session(model, cpu, self.w.profile)
            self.record(GateRecord("ep", "refused", f"{message}; verified on the CPU EP", label))
        counts = evaluate.ep_node_counts(session)
        if on_ep != evaluate.CPU and counts and not counts.get(on_ep):
            on_ep, reason = evaluate.CPU, f"{self.choice.on_ep} took no node of this variant"
        outputs = evaluate.run_dataset(session, self.w.verify_data)
        metrics, gate = self.w.check(outputs)
        self.record(gates.gate_record(gate, label))
        latency = None
        if gate.passed and self.choice.present and self.w.measure_speed:
            self.emit("measure", f"measuring {label} on {on_ep}")
            latency = evaluate.latency_ms(session, self.w.verify_data.sample(0))
        return Candidate(
            recipe=recipe, label=label, precision=built.precision, model_file=model,
            extra_files=extra, quantized_from=source, built=built.path, metrics=metrics,
            gate=gate, on_ep=on_ep, on_ep_reason=reason, notes=notes, latency_ms=latency,
            ep_refused=refused,
        )  # fmt: skip

    def _verify_remote(
        self, recipe: Recipe, label: str, built: quantize.Built, source: Path,
        model: Path, extra: tuple[Path, ...], notes: tuple[str, ...],
    ) -> Candidate:  # fmt: skip
        """:meth:`_verify` in a target runtime (:mod:`edgeort.pack.inruntime`)."""
        assert self.remote is not None
        where = f"{self.choice.on_ep} in runtime {self.remote.name}"
        self.emit("verify", f"verifying {label} on {where}")
        onnx_file = built.path if model.suffix == ".ort" else model
        run = self.w.runtimes.verify(
            self.remote, self.w.profile, model, extra, onnx_file, self.w.verify_data,
            precision=built.precision,
            measure=self.w.measure_speed and not self.choice.simulated,
        )  # fmt: skip
        metrics, gate = self.w.check(run.outputs)
        self.record(gates.gate_record(gate, label))
        latency = run.latency_ms if gate.passed else None
        return Candidate(
            recipe=recipe, label=label, precision=built.precision, model_file=model,
            extra_files=extra, quantized_from=source, built=built.path, metrics=metrics,
            gate=gate, on_ep=run.on_ep, on_ep_reason=run.reason, notes=notes,
            latency_ms=latency, runtime=run.record,
        )  # fmt: skip

    # -- choosing ------------------------------------------------------------------
    def candidates(self) -> Candidate | None:
        recipes = self.w.recipes()
        passing: list[Candidate] = []
        first: Candidate | None = None
        for recipe in recipes:
            if recipe.outliers and self.w.calibration is None:
                why = f"{quantize.describe(recipe)} skipped: outliers need calibration data"
                self.record(GateRecord("recipe", "skip", why))
                continue
            cand = self.build(recipe, quantize.describe(recipe))
            first = first or cand
            if cand.gate.passed:
                passing.append(cand)
                if not (self.choice.present and self.w.measure_speed):
                    break
        if not passing:
            return self.fallback(first) if first else None
        if len(passing) > 1:
            passing = self._retime(passing)
            best = min(passing, key=lambda c: c.latency_ms if c.latency_ms is not None else 1e30)
            timings = "; ".join(
                f"{c.label} = {c.latency_ms:.4f} ms" for c in passing if c.latency_ms is not None
            )
            why = f"fastest passing recipe on {self.choice.on_ep}: {timings}"
            self.record(GateRecord("recipe", "keep", why, best.label))
            return self.without_slow_fusions(best)
        return self.without_slow_fusions(passing[0])

    def without_slow_fusions(self, cand: Candidate) -> Candidate:
        """``cand`` with the :data:`SLOW_FUSIONS` off when that measures faster here and
        still passes the gate (CPU EP variants, verified in-process, speed measured)."""
        if not (
            cand.on_ep == evaluate.CPU
            and self.choice.on_ep == evaluate.CPU
            and self.remote is None
            and self.w.measure_speed
            and cand.precision != "fp32"
            and cand.model_file.suffix == ".onnx"
        ):
            return cand
        import onnx

        graph = onnx.load_model(str(cand.model_file), load_external_data=False).graph
        ops = {n.op_type for n in graph.node}
        slow = [name for name, op in SLOW_FUSIONS.items() if op in ops]
        if not slow:
            return cand
        config = {DISABLE_OPTIMIZERS: ",".join(slow)}
        base = evaluate.make_session(cand.model_file, self.choice, self.w.profile)
        try:
            alt = evaluate.make_session(cand.model_file, self.choice, self.w.profile, config)
        except evaluate.SessionRefused as exc:  # an ORT without the config key
            self.record(GateRecord("session", "skip", f"{DISABLE_OPTIMIZERS}: {exc.reason}"))
            return cand
        metrics, gate = self.w.check(evaluate.run_dataset(alt, self.w.verify_data))
        feed = self.w.verify_data.sample(0)
        # interleaved, with the pause between sessions the other timings take
        on, off = evaluate.latency_ms_interleaved(
            [base, alt], feed, runs=FUSION_ROUNDS * evaluate.LATENCY_RUNS, rounds=FUSION_ROUNDS
        )
        what = f"{'/'.join(slow)} off: {off:.4f} ms vs {on:.4f} ms on"
        if not gate.passed or off > on * (1 - FUSION_MARGIN):
            why = gate.reason if not gate.passed else f"not {FUSION_MARGIN:.0%} faster"
            self.record(GateRecord("session", "skip", f"{what}; kept on ({why})", cand.label))
            return cand
        self.record(GateRecord("session", "keep", f"{what}; off in the variant", cand.label))
        return replace(
            cand, metrics=metrics, gate=gate, latency_ms=off,
            session_config=tuple(sorted(config.items())),
        )  # fmt: skip

    def fallback(self, failed: Candidate) -> Candidate:
        current = failed
        for step, recipe in gates.fallback_recipes(failed.recipe, self.w.profile.verify.fallback):
            self.emit("verify", f"fallback: {step}")
            if recipe is None:
                cand = self._exclude_sensitive(current)
            else:
                cand = self.build(recipe, f"{quantize.describe(recipe)} (fallback {step})")
                if recipe.mode in gates.QUANTIZED_MODES:
                    current = cand
            if cand is not None and cand.gate.passed:
                self.record(
                    GateRecord(
                        "accuracy", "fallback", f"shipped {cand.label}: {step} passed", cand.label
                    )
                )
                return cand
        raise PackageError(
            f"target {self.w.profile.name}: no variant passes the accuracy gate "
            f"({failed.gate.reason}); tried: {', '.join(g.recipe for g in self.gates if g.recipe)}",
            target=self.w.profile.name,
        )

    def _exclude_sensitive(self, current: Candidate) -> Candidate | None:
        ranked = sensitivity.rank_sensitive_nodes(
            current.quantized_from, current.built, self._sens_data(), self.w.work
        )
        log.info("sensitive nodes, worst first: %s", ranked[:10])
        if not ranked:
            self.record(
                GateRecord("accuracy", "skip", "exclude_sensitive: no node adds measurable error")
            )
            return None
        cand, tried = None, set()
        for fraction in EXCLUDE_FRACTIONS:
            count = max(1, round(fraction * len(ranked)))
            if count in tried:
                continue
            tried.add(count)
            names = dict.fromkeys(name for group in ranked[:count] for name in group)
            excluded = (*current.recipe.nodes_to_exclude, *names)
            recipe = replace(current.recipe, nodes_to_exclude=excluded)
            label = f"{quantize.describe(current.recipe)} excluding {len(names)} sensitive node(s)"
            cand = self.build(recipe, f"{label} (fallback exclude_sensitive)")
            if cand.gate.passed:
                return cand
        return cand

    def _sens_data(self) -> Dataset:
        return (self.w.calibration or self.w.verify_data).head(8)

    def _retime(self, cands: list[Candidate]) -> list[Candidate]:
        """The candidates' latencies measured again, in interleaved rounds, so the
        fastest-recipe choice and the speed gate compare timings taken under the same
        load (each was first timed alone, when it was built). Candidates verified in a
        target runtime, or not timed, keep their own timings."""
        if any(c.latency_ms is None or c.runtime is not None for c in cands):
            return cands
        try:
            sessions = [
                evaluate.make_session(
                    c.model_file,
                    self.choice if c.on_ep == self.choice.on_ep
                    else replace(self.choice, on_ep=c.on_ep),
                    self.w.profile,
                )
                for c in cands
            ]  # fmt: skip
            times = evaluate.latency_ms_interleaved(sessions, self.w.verify_data.sample(0))
        except Exception as exc:  # a session that cannot be made again: first timings
            log.info("interleaved timing failed, keeping each build's own: %s", exc)
            return cands
        self.record(
            GateRecord(
                "speed", "note",
                "timed again in interleaved rounds: "
                + "; ".join(f"{c.label} = {t:.4f} ms" for c, t in zip(cands, times, strict=True)),
            )
        )  # fmt: skip
        return [replace(c, latency_ms=t) for c, t in zip(cands, times, strict=True)]

    def speed(self, chosen: Candidate) -> tuple[Candidate, float | None]:
        prof = self.w.profile
        if not (self.choice.present and self.w.measure_speed and prof.verify.speed_gate):
            why = "EP not present here" if not self.choice.present else "speed measurement off"
            if self.choice.simulated:
                why = f"{self.choice.on_ep} runs in simulation here"
            self.record(GateRecord("speed", "skip", f"not measured: {why}"))
            return chosen, None
        if chosen.precision == "fp32":
            self.record(gates.speed_gate("fp32", chosen.latency_ms, chosen.latency_ms))
            return chosen, chosen.latency_ms
        fp32 = self.build(Recipe(), "fp32 (speed baseline)")
        chosen, fp32 = self._retime([chosen, fp32])
        record = gates.speed_gate(chosen.precision, chosen.latency_ms, fp32.latency_ms)
        self.record(record)
        return (
            (fp32, fp32.latency_ms) if record.decision == "replace" else (chosen, fp32.latency_ms)
        )


def task_compare(
    reference: list[np.ndarray],
    outputs: list[np.ndarray],
    data: Dataset,
    task: Family | None,
    metric: str | MetricFn | None,
) -> Metrics:
    """:func:`compare` with the family's metric, or the user's (a name or a callable)."""
    name = metric if isinstance(metric, str) else (task.metric if task else None)
    return compare(
        reference,
        outputs,
        data.labels,
        padding_mask(data.arrays, data.samples),
        task=name,
        layout=task.layout if task else None,
        custom=metric if callable(metric) else None,
    )


_QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
    "QLinearConv", "QLinearMatMul", "MatMulNBits", "QAttention", "DynamicQuantizeMatMul",
})  # fmt: skip


def _quantized_nodes(graph: Any) -> int:
    """Quantized nodes in ``graph`` and every subgraph (If/Loop/Scan bodies)."""
    return sum(n.op_type in _QUANTIZED_OPS for g in graphs_in(graph) for n in g.node)


def _honest_precision(built: quantize.Built) -> quantize.Built:
    """A quantizing recipe that quantized no node (all the compute sits in subgraphs
    the quantizer leaves float, or no op it handles) holds an fp32 model: say so."""
    if built.precision in ("fp32", "fp16"):
        return built
    import onnx

    if _quantized_nodes(onnx.load_model(str(built.path), load_external_data=False).graph):
        return built
    why = (
        f"{built.precision} recipe quantized no node (ops in If/Loop/Scan subgraphs or "
        "outside the recipe's op types stay float): the variant is fp32"
    )
    return quantize.Built(built.path, "fp32", (*built.notes, why))


def build_target(work: TargetWork, emit: Emit) -> TargetOutcome:
    builder = _Builder(work, emit)
    chosen = builder.candidates()
    if chosen is None:  # pragma: no cover - recipes_for always yields one recipe
        raise PackageError(
            f"target {work.profile.name}: no recipe to build", target=work.profile.name
        )
    chosen, fp32_latency = builder.speed(chosen)
    return TargetOutcome(work, chosen, builder.choice, tuple(builder.gates), fp32_latency)
