"""``package()``: one ONNX model -> one verified multi-variant bundle.

Steps: load and check (once), then per target prepare / optimize / quantize / convert /
verify / measure (:mod:`edgeort.pack.target`), then write the bundle atomically with
:func:`edgeort.bundle.write_bundle`. All intermediate files live in a work directory
``.edgeort-tmp-pack-*`` beside the output, locked (``flock``) while the run lasts and
removed when it ends; one a killed run left behind is unlocked, and the next run or
bundle writer in that directory removes it once stale (``edgeort.bundle``'s convention
for ``.edgeort-tmp-*``, which readers ignore). The output path gets a complete bundle or
nothing (an existing bundle there is replaced only on success).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeort._fs import TMP_PREFIX, os_error_text
from edgeort.bundle import TensorSpec
from edgeort.errors import DataError, EdgeortError, PackageError, UsageError
from edgeort.pack import data as data_mod
from edgeort.pack import evaluate, optimize, prepare, quantize
from edgeort.pack import family as family_mod
from edgeort.pack import freeze as freeze_mod
from edgeort.pack.events import Event, EventSink
from edgeort.pack.load import SourceModel, io_info, load_model, save_model
from edgeort.pack.metrics import TASK_METRICS, MetricFn
from edgeort.pack.result import FailedTarget, PackageResult, VariantResult
from edgeort.pack.target import TargetOutcome, TargetWork, build_target, task_compare
from edgeort.profiles import Profile

__all__ = ["PackageResult", "VariantResult", "package"]

log = logging.getLogger(__name__)

SYNTHETIC_SAMPLES = 16
WORK_PREFIX = f"{TMP_PREFIX}pack-"  # the run's work directory, beside the output


@contextlib.contextmanager
def _work_dir(output: Path) -> Iterator[Path]:
    """A locked work directory beside ``output``, removed when the run ends. Unlocked
    stale ``.edgeort-tmp-*`` leftovers there (of killed runs) are removed first."""
    from edgeort.bundle import clean_leftovers, locked

    parent = output.absolute().parent  # absolute: steps run third-party code elsewhere (cwd)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(parent)
        work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=parent))
    except OSError as exc:
        raise PackageError(
            f"cannot create a work directory beside {output}: {os_error_text(exc)}", path=output
        ) from exc
    try:
        with locked(work):
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _resolve(
    targets: Iterable[str], profiles: Sequence[Profile] | None, here: bool
) -> list[Profile]:
    from edgeort.profiles import load_profiles
    from edgeort.profiles.match import resolve_target

    names = list(targets)
    if not names:
        raise UsageError("no target given: pass at least one -t/--target", option="--target")
    known = tuple(profiles) if profiles is not None else load_profiles()
    device = None
    if here and any(name not in {p.name for p in known} for name in names):
        from edgeort.hardware import probe

        device = probe()
    chosen: dict[str, Profile] = {}
    for name in names:
        profile = resolve_target(name, known, device)
        chosen.setdefault(profile.name, profile)
    return list(chosen.values())


def _load_profiles(profiles: Sequence[Profile | str | Path] | None) -> Sequence[Profile] | None:
    """``profiles``: Profile objects (used as the whole set) or extra profile files."""
    if profiles is None:
        return None
    objs = [p for p in profiles if isinstance(p, Profile)]
    files = [p for p in profiles if not isinstance(p, Profile)]
    if files:
        from edgeort.profiles import load_profiles

        return (*load_profiles(files), *objs)
    return objs


@dataclass(frozen=True, slots=True)
class _Options:
    """What :func:`package` was asked for, as the steps read it."""

    shapes: Mapping[str, Sequence[int]]
    calibration: str | Path | None
    validation: str | Path | None
    max_drop: float | None
    measure_speed: bool
    runtimes: Any = None  # edgeort.pack.inruntime.RuntimeVerifier
    min_ort: str | None = None
    task: family_mod.Family | None = None
    metric: str | MetricFn | None = None
    state: tuple[tuple[str, str], ...] = ()
    freeze: Mapping[str, Any] = field(default_factory=dict)  # input -> np.ndarray (--freeze)
    loaded: Mapping[str | Path, data_mod.Dataset] = field(default_factory=dict)  # checked files


class _Run:
    def __init__(self, source: SourceModel, family: str, work: Path, opts: _Options) -> None:
        self.source, self.family, self.work = source, family, work
        self.opts = opts
        self._prepared: dict[bool, tuple[Path, tuple[str, ...], tuple[TensorSpec, ...]]] = {}
        self._fused: dict[bool, tuple[Path, dict[str, int], tuple[str, ...]]] = {}
        self._reference: dict[bool, tuple[Any, ...]] = {}

    def prepared(self, fixed: bool) -> tuple[Path, tuple[str, ...], tuple[TensorSpec, ...]]:
        """The prepared fp32 file, its notes and its inputs; once per shape."""
        if fixed not in self._prepared:
            model = self.source.proto.__class__()
            model.CopyFrom(self.source.proto)
            notes = prepare.fix_shapes(model, self.opts.shapes) if fixed else ()
            if fixed and self.opts.freeze:
                notes += freeze_mod.apply_freeze(model, self.opts.freeze)
            prepare.constants_to_initializers(model)
            prepare.name_nodes(model)
            path = self.work / ("fixed" if fixed else "dynamic") / "model.onnx"
            save_model(model, path)
            if fixed:
                prepare.check_fixed(path, notes)
            self._prepared[fixed] = (path, notes, io_info(model)[0])
        return self._prepared[fixed]

    def fused(self, fixed: bool, profile: Profile) -> tuple[Path, dict[str, int], tuple[str, ...]]:
        path = self.prepared(fixed)[0]
        if self.family != "transformer" or not profile.model.fuse_transformers:
            return path, {}, ()
        if fixed not in self._fused:
            fused = optimize.fuse_transformer(path, path.with_name("fused.onnx"))
            self._fused[fixed] = (fused.path, dict(fused.stats), fused.notes)
        return self._fused[fixed]

    def datasets(
        self, inputs: Sequence[Any]
    ) -> tuple[data_mod.Dataset, str, data_mod.Dataset | None]:
        calib_path, valid_path = self.opts.calibration, self.opts.validation
        same_inputs = tuple(inputs) == self.source.inputs

        def load(path: str | Path) -> data_mod.Dataset:
            # package() already loaded each file against the source's inputs: reuse it
            # unless fixing shapes or freezing changed the inputs it must fit.
            if same_inputs and path in self.opts.loaded:
                return self.opts.loaded[path]
            return data_mod.load_data(
                path, inputs, optional=self.source.optional, state=self.opts.state
            )

        calib = load(calib_path) if calib_path else None
        if valid_path:
            return load(valid_path), "validation", calib
        if calib is not None:
            return calib, "calibration", calib
        vocab = data_mod.vocab_sizes(self.source.proto)
        synth = data_mod.synthetic_data(
            inputs, samples=SYNTHETIC_SAMPLES, vocab=vocab, state=self.opts.state
        )
        return synth, "synthetic", None

    def reference(self, fixed: bool) -> tuple[Any, ...]:
        """Data, fp32 reference outputs (CPU EP) and their own task metrics (the gate's
        baseline) for the prepared model; once per shape."""
        if fixed not in self._reference:
            fp32, _, inputs = self.prepared(fixed)
            verify, kind, calib = self.datasets(inputs)
            session = evaluate.make_session(fp32, evaluate.EpChoice(evaluate.CPU, evaluate.CPU))
            if calib is not None and calib.state:
                # Calibrate on the states the fp32 model really produces step by step.
                fed: dict[str, Any] = {}
                evaluate.run_dataset(session, calib, fed=fed)
                calib = calib.with_arrays(fed, stateless=True)
            reference = evaluate.run_dataset(session, verify)
            own = task_compare(reference, reference, verify, self.opts.task, self.opts.metric)
            self._reference[fixed] = (verify, kind, calib, reference, own)
        return self._reference[fixed]

    def work_for(self, profile: Profile, index: int, keep_going: bool) -> TargetWork:
        fixed = profile.model.fixed_shapes
        fp32, shape_notes, _ = self.prepared(fixed)
        base, stats, fuse_notes = self.fused(fixed, profile)
        verify, kind, calib, reference, own = self.reference(fixed)
        notes = list(shape_notes) + list(fuse_notes) + list(verify.notes)
        if kind == "calibration":
            notes.append("no validation data: verified on the calibration data")
        target_dir = self.work / f"t{index}"
        target_dir.mkdir(parents=True, exist_ok=True)
        task, metric = self.opts.task, self.opts.metric
        return TargetWork(
            profile=profile, family=self.family, fp32=fp32, base=base, fused_stats=stats,
            verify_data=verify, data_kind=kind, calibration=calib, reference=reference,
            reference_metrics=own, work=target_dir, max_drop=self.opts.max_drop,
            measure_speed=self.opts.measure_speed, notes=tuple(notes), keep_going=keep_going,
            runtimes=self.opts.runtimes, min_ort=self.opts.min_ort, task=task, metric=metric,
            frozen=freeze_mod.frozen_json(self.opts.freeze) if fixed else {},
        )  # fmt: skip


def _check_metric(metric: str | MetricFn | None) -> None:
    if metric is None or callable(metric):
        return
    if metric not in TASK_METRICS:
        raise UsageError(
            f"--metric {metric!r}: expected one of {', '.join(TASK_METRICS)} "
            "(or, from Python, a callable (reference, outputs) -> score)",
            option="--metric",
        )


def _check_recipes(targets: Sequence[Profile], family: str, has_calibration: bool) -> None:
    if has_calibration:
        return
    for profile in targets:
        for recipe in profile.model.recipes_for(family):
            if quantize.needs_calibration(recipe):
                raise DataError(
                    f"target {profile.name}: recipe {quantize.describe(recipe)} for a {family} "
                    "model "
                    "needs calibration data: pass --calibration FILE (an .npz with one array per "
                    "model input name, first axis = samples, e.g. 100-500 representative inputs; "
                    "or a directory of <input name>.npy files), or choose a profile whose recipe "
                    "is dynamic int8, fp16 or fp32"
                )


def package(
    model: str | Path,
    targets: Iterable[str],
    *,
    output: str | Path,
    calibration: str | Path | None = None,
    validation: str | Path | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    max_drop: float | None = None,
    zip: bool = False,
    profiles: Sequence[Profile | str | Path] | None = None,
    on_event: Callable[[Event], None] | None = None,
    measure_speed: bool = True,
    here: bool = True,
    state: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    keep_going: bool = False,
    family: str | None = None,
    metric: str | MetricFn | None = None,
    name: str | None = None,
    version: str | None = None,
    runtimes: str | Sequence[str] | None = "auto",
    allow_install: bool = False,
    min_ort: str | None = None,
    freeze: Mapping[str, Any] | None = None,
) -> PackageResult:
    """Package ``model`` for every target into the bundle ``output`` (see module doc).

    ``targets``: profile names or short names (``cpu``, ``qnn``...): with ``here`` (the
    default) a short name is the best profile of that name that fits this device, and
    the one marked default when none fits or ``here=False`` (packaging for elsewhere).
    ``calibration``/``validation``: ``.npz`` or ``.npy``
    directory (:mod:`edgeort.pack.data`); without validation data the calibration data
    verifies, without either synthetic inputs do (and static recipes are refused).
    ``shapes``: fixed input shapes for targets that need them. ``max_drop`` replaces the
    profiles' accuracy bound. ``profiles``: Profile objects (the whole set to resolve
    targets in) and/or extra profile files. ``on_event`` gets every :class:`Event`; an
    exception it raises aborts the run with nothing written. ``measure_speed=False``
    skips latency (and so the speed gate and the fastest-recipe choice).
    ``state``: the model's state pairs ``{input: output}`` (an output fed back as that
    input on the next call; :mod:`edgeort.pack.state`): ``None`` detects them, ``{}``
    says there are none. Stateful models are calibrated and verified over sequences.
    ``keep_going``: a target that fails (any :class:`EdgeortError`) is left out and
    listed (``PackageResult.failed``, the bundle's ``failed_targets``) and the bundle is
    written with the others; without it, or when every target fails, nothing is written.
    ``family``: what the model does (:mod:`edgeort.pack.family`: ``classifier``,
    ``detector[:yolov8|yolov5|yolox]``, ``segmenter``, ``recognizer``, ``scores``, ``encoder``,
    ``generic``); ``None`` reads it off the graph. It picks the recipes and the gate's
    metric. ``metric``: the gate's metric instead of the family's, a name
    (``top1``, ``boxes``, ``map_iou``, ``ctc``, ``decision``, ``cosine``) or a callable
    ``(fp32 outputs, variant outputs) -> score`` where 1.0 means identical.
    A variant whose EP is present but refuses it fails its target; with ``keep_going`` it
    is kept instead, verified on the CPU EP and recorded as refused (``ep_refused``).
    ``name``/``version``: the bundle's ``package_name``/``package_version`` (default: the
    model file's stem, "1").
    ``runtimes``: where targets whose EP does not run in this process are verified
    (:mod:`edgeort.pack.inruntime`): ``"auto"`` (a created target runtime that runs the
    EP; a missing built-in one is created only with ``allow_install``), ``"none"``, or
    runtime names (used for every target whose EP they run). ``min_ort``: the oldest
    onnxruntime every variant must load in; opset and IR version are down-converted
    where needed (:mod:`edgeort.pack.compat`) and the variants record it.
    ``freeze``: ``{input: value}`` for targets that fix shapes (as ``shapes``): each
    input's uses read the value as a constant and ``If`` nodes that then pick one branch
    keep only it (:mod:`edgeort.pack.freeze`); the variants record the values and
    refuse another one at run time.
    """
    _check_package_id(name, version)
    if max_drop is not None and not 0.0 <= max_drop <= 1.0:
        raise UsageError(
            f"--max-drop {max_drop}: expected a fraction in [0, 1]", option="--max-drop"
        )
    chosen = _resolve(targets, _load_profiles(profiles), here)
    sink = EventSink(on_event, len(chosen))
    sink.emit("start", "", "load", f"loading {model}")
    source = load_model(model)
    shapes = {k: tuple(v) for k, v in (shapes or {}).items()}
    prepare.check_shapes(shapes, source.inputs)
    pairs = _state_pairs(source, state)
    frozen = freeze_mod.check_freeze(freeze or {}, source.inputs)
    if pairs:
        found = ", ".join(f"{i}={o}" for i, o in pairs)
        how = "given" if state is not None else "detected; override with --state IN=OUT"
        sink.emit("progress", "", "load", f"state pairs ({how}): {found}")
    vocab = data_mod.vocab_sizes(source.proto)
    loaded: dict[str | Path, data_mod.Dataset] = {}
    for path in (calibration, validation):
        if path is not None:  # fail fast, before any work
            data = data_mod.load_data(path, source.inputs, optional=source.optional, state=pairs)
            data_mod.check_index_ranges(data, vocab, path)
            _check_frozen_data(data, frozen, path)
            loaded[path] = data
    _check_metric(metric)
    task = family_mod.detect(source.proto, optimize.detect_family(source.proto), family)
    family = task.recipes
    if frozen and not any(p.model.fixed_shapes for p in chosen):
        raise UsageError(
            f"--freeze {', '.join(frozen)}: applies to targets that fix shapes (qnn, nnapi, "
            f"coreml...), and none of {', '.join(p.name for p in chosen)} does",
            option="--freeze",
        )
    if not keep_going:  # fail before any target's work
        if any(p.model.fixed_shapes for p in chosen):
            prepare.fix_shapes(copy.deepcopy(source.proto), shapes)
        _check_recipes(chosen, family, calibration is not None)
    from edgeort.pack.compat import parse_min_ort
    from edgeort.pack.inruntime import RuntimeVerifier, parse_runtimes

    min_ort = parse_min_ort(min_ort)
    verifier = RuntimeVerifier(parse_runtimes(runtimes), allow_install)
    what = f"{family} model, {task.label} ({task.reason})"
    sink.emit("done", "", "load", f"{source.path.name}: {what}, {len(chosen)} target(s)")
    with _work_dir(Path(output)) as tmp, contextlib.closing(verifier):
        opts = _Options(
            shapes=shapes,
            calibration=calibration,
            validation=validation,
            max_drop=max_drop,
            measure_speed=measure_speed,
            runtimes=verifier,
            min_ort=min_ort,
            task=task,
            metric=metric,
            state=pairs,
            freeze=frozen,
            loaded=loaded,
        )
        run = _Run(source, family, tmp, opts)
        outcomes: list[TargetOutcome] = []
        failed: list[FailedTarget] = []
        for index, profile in enumerate(chosen):
            sink.begin_target(index)
            try:
                if keep_going:
                    _check_recipes([profile], family, calibration is not None)
                outcomes.append(_one_target(run, profile, index, sink, keep_going))
            except EdgeortError as exc:
                if not keep_going:
                    raise
                failed.append(FailedTarget(profile.name, type(exc).__name__, str(exc)))
                sink.emit("warning", profile.name, "verify", f"left out: {exc}")
        if not outcomes:
            raise PackageError(
                "every target failed, nothing written: "
                + "; ".join(f"{f.target}: {f.message}" for f in failed)
            )
        sink.emit("start", "", "write", f"writing {output}")
        from edgeort.pack.write import write

        result = write(
            Path(output), source, outcomes, as_zip=zip, family=family,
            name=name, version=version or "1", failed=failed, state=pairs,
        )  # fmt: skip
    sink.emit("done", "", "write", f"wrote {result.path}", done=True)
    return result


def _check_frozen_data(data: data_mod.Dataset, frozen: Mapping[str, Any], path: Any) -> None:
    """Every sample of a frozen input holds its frozen value: the variants that freeze
    it are verified on this data."""
    for name, value in frozen.items():
        arr = data.arrays.get(name)
        if arr is None:
            continue
        for i in range(data.samples):
            got = arr[i] if data.stacked[name] else arr[i : i + 1]
            if not np.array_equal(got, value):
                raise DataError(
                    f"{path}: input {name!r} is frozen to {value.tolist()} (--freeze) but "
                    f"sample {i} holds {np.asarray(got).tolist()}: give data at the frozen "
                    "value, or freeze another value"
                )


def _check_package_id(name: str | None, version: str | None) -> None:
    import re

    for option, value in (("--name", name), ("--version", version)):
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", value):
            raise UsageError(
                f"{option} {value!r}: expected 1-128 letters, digits, '.', '_', '+' or '-' "
                "(not starting with a symbol)",
                option=option,
            )


def _state_pairs(
    source: SourceModel, state: Mapping[str, str] | Sequence[tuple[str, str]] | None
) -> tuple[tuple[str, str], ...]:
    from edgeort.pack import state as state_mod

    if state is None:
        return state_mod.detect_pairs(source.inputs, source.outputs)
    return state_mod.check_pairs(state, source.inputs, source.outputs)


def _one_target(
    run: _Run, profile: Profile, index: int, sink: EventSink, keep_going: bool
) -> TargetOutcome:
    try:
        return _build_one(run, profile, index, sink, keep_going)
    except EdgeortError:
        raise
    except Exception as exc:  # a step's third-party code failed: name the target and step
        log.debug("target %s failed", profile.name, exc_info=True)
        raise PackageError(
            f"target {profile.name}: {type(exc).__name__}: {str(exc).strip()[:400]}; try "
            "another recipe (--profile FILE) or leave this target out (--keep-going)",
            target=profile.name,
        ) from exc


def _build_one(
    run: _Run, profile: Profile, index: int, sink: EventSink, keep_going: bool
) -> TargetOutcome:
    name = profile.name
    sink.emit("start", name, "prepare", f"preparing for {name} ({profile.runtime.ep})")
    work = run.work_for(profile, index, keep_going)
    for note in work.notes:
        sink.emit("progress", name, "prepare", note)

    def emit(step: str, message: str, kind: str = "progress") -> None:
        sink.emit(kind, name, step, message)

    outcome = build_target(work, emit)  # it warns about each gate decision as it is taken
    acc = outcome.chosen.gate
    sink.emit(
        "done", name, "verify",
        f"{name}: {outcome.chosen.label} on {outcome.chosen.on_ep}: {acc.reason}",
    )  # fmt: skip
    return outcome
