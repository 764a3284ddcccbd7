"""``edgeort bench | profile | tune | doctor``: measure a model or bundle and explain it.

Each takes ``MODEL|BUNDLE`` (an ``.onnx`` file, a bundle directory or ``.zip``) and
``--json``; the JSON forms are documented in ``docs/cli-measure.md``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edgeort.cli.commands_farm import (
    farm_options,
    format_farm_bench,
    job_printer,
    need_farm,
    security_from,
)
from edgeort.errors import UsageError
from edgeort.feeds import dynamic_axes

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.measure.targets import Resolved

__all__ = ["COMMANDS"]

JSON_SCHEMA = 1


def _emit(command: str, data: dict[str, Any]) -> None:
    text = json.dumps({"command": command, "schema": JSON_SCHEMA, **data}, indent=2)
    click.echo(text)


def _lines(lines: list[str]) -> None:
    click.echo("\n".join(lines))


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    from edgeort.feeds import parse_assignments

    return parse_assignments(items, option=option)


def _dims(items: tuple[str, ...], resolved: Any = None) -> dict[str, int]:
    """``--dim`` values over the sizes the packager verified a bundle variant at."""
    out = {}
    for name, value in _pairs(items, "--dim").items():
        if not value.isdigit() or int(value) < 1:
            raise UsageError(f"--dim {name}={value}: expected a positive integer", option="--dim")
        out[name] = int(value)
    if out and resolved is not None:  # names checked against every target's inputs
        from edgeort.feeds import check_dim_names

        check_dim_names([i for t in resolved.targets for i in _inputs_of(t)], out)
    return {**_recorded_dims(resolved), **out} if resolved is not None else out


def _recorded_dims(resolved: Any) -> dict[str, int]:
    """Dynamic dims of bundle variants at the sizes of their first verification sample
    (``sample_shapes``, recorded by ``edgeort package``): the sizes the model is used
    at, which 1 seldom is (a 1-token sentence, a 1x1 image)."""
    out: dict[str, int] = {}
    for t in resolved.targets:
        variant = t.variant
        shapes = (variant.metadata.get("sample_shapes") if variant is not None else None) or {}
        for spec in variant.inputs if variant is not None else ():
            shape = shapes.get(spec.name)
            if not isinstance(shape, list) or spec.shape is None or len(shape) != len(spec.shape):
                continue
            for axis, key in dynamic_axes(spec):
                if isinstance(shape[axis], int) and shape[axis] >= 1:
                    out.setdefault(key, shape[axis])
    return out


def _inputs_of(target: Any) -> list[Any]:
    if target.variant is not None:
        return list(target.variant.inputs)
    import onnxruntime as ort

    from edgeort.hardware.ep import cpu_session

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return list(cpu_session(target.model_path, so).get_inputs())


def _resolve(
    path: Path, ep: str | None, ep_options: tuple[str, ...], variant: str | None
) -> Resolved:
    from edgeort.measure.targets import resolve

    return resolve(path, ep=ep, ep_options=_pairs(ep_options, "--ep-option"), variant=variant)


def _machine(resolved: Any) -> dict[str, Any]:
    """The probe summary of this machine, so a results file says where it was measured."""
    from edgeort.hardware import probe
    from edgeort.report.machine import machine_summary

    device = resolved.device if resolved.device is not None else probe(register_plugins=False)
    return machine_summary(device.to_json())


def _need_targets(resolved: Any) -> None:
    if not resolved.targets:
        reasons = "; ".join(f"{k}: {v}" for k, v in resolved.skipped.items())
        raise UsageError(f"{resolved.path}: nothing can run on this device ({reasons})")


_path_arg = click.argument(
    "path", metavar="MODEL|BUNDLE", type=click.Path(exists=True, path_type=Path)
)
_json_opt = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (docs/cli-measure.md)."
)
_variant_opt = click.option("--variant", help="Only this variant of a bundle.")
_runtime_opt = click.option(
    "--runtime",
    "runtime_name",
    metavar="NAME",
    help="Measure inside the target runtime NAME (edgeort runtimes; bundles only).",
)
_ep_opt = click.option(
    "--ep",
    help="EP for a plain model, or only the bundle variants on it: an EP name "
    "(QNNExecutionProvider) or a profile or short name (qnn).",
)
_ep_option_opt = click.option(
    "--ep-option",
    "ep_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Provider option (repeatable).",
)
_input_opt = click.option(
    "--input", "inputs", multiple=True, metavar="NAME=FILE.npy", help="Input from a .npy file."
)
_dim_opt = click.option(
    "--dim",
    "dims",
    multiple=True,
    metavar="NAME=N",
    help="Value of a dynamic dimension (default 1).",
)


def _progress(
    enabled: bool, total: int | None, duration: float | None
) -> tuple[Any, Callable[..., None] | None]:
    if not enabled:
        return None, None
    length = total if total is not None else int((duration or 0) * 10)
    bar = click.progressbar(length=max(1, length), label="timing", file=sys.stderr)
    state = {"shown": 0}

    def update(done: int, _total: int | None, elapsed: float) -> None:
        now = done if total is not None else min(length, int(elapsed * 10))
        bar.update(now - state["shown"])
        state["shown"] = now

    return bar, update


@click.command("bench")
@_path_arg
@_variant_opt
@_ep_opt
@_ep_option_opt
@click.option("--runs", type=click.IntRange(min=1), default=None, help="Timed runs (default 50).")
@click.option(
    "--duration", type=click.FloatRange(min=0, min_open=True), help="Time for S seconds instead."
)
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True,
              help="Untimed runs before timing starts.")  # fmt: skip
@click.option("--threads", type=click.IntRange(min=0), help="Intra-op threads (0 = ORT default).")
@_input_opt
@_dim_opt
@click.option(
    "--compare",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[FP32.onnx]",
    help="Also run the fp32 source model (given, or recorded by the bundle) as the baseline.",
)
@_runtime_opt
@click.option(
    "--per-profile",
    type=click.IntRange(min=1),
    default=None,
    help="With --farm: at most N workers per variant's profile (default: every fitting one).",
)
@click.option(
    "--merge",
    is_flag=True,
    help="With --farm: record the rows in the bundle's per-device measurements (re-sealed).",
)
@farm_options
@_json_opt
def bench_command(
    path: Path,
    variant: str | None,
    ep: str | None,
    ep_options: tuple[str, ...],
    runs: int | None,
    duration: float | None,
    warmup: int,
    threads: int | None,
    inputs: tuple[str, ...],
    dims: tuple[str, ...],
    compare: str | None,
    runtime_name: str | None,
    per_profile: int | None,
    merge: bool,
    farm: str | None,
    farm_timeout: float | None,
    as_json: bool,
    **tls: Any,
) -> None:
    """Latency (median, mean, p90/p95/p99, min/max), throughput, session creation time
    and peak memory of a model or of each runnable bundle variant; with --farm, of each
    variant on every farm worker whose device fits it."""
    if farm is not None:
        given: dict[str, object] = {
            "--ep": ep, "--ep-option": ep_options, "--input": inputs, "--dim": dims,
            "--compare": compare is not None,
        }  # fmt: skip
        bad = [k for k, v in given.items() if v]
        if bad:
            raise UsageError(f"{', '.join(bad)} cannot be used with --farm", option=bad[0])
        _farm_bench(path, farm, variant, per_profile, merge, runs, duration, warmup, threads,
                    farm_timeout, as_json, tls)  # fmt: skip
        return
    if per_profile is not None or merge:
        raise UsageError("--per-profile and --merge need --farm ADDRESS", option="--farm")
    need_farm(farm_timeout, tls)
    if runtime_name is not None:
        from edgeort.cli.commands_runtimes import bench_in_runtime

        if ep or ep_options or duration or dims or compare is not None:
            raise UsageError(
                "--runtime takes --variant, --runs, --warmup, --threads and --input only",
                option="--runtime",
            )
        bench_in_runtime(
            path, runtime_name, variant=variant, runs=runs or 50, warmup=warmup,
            threads=threads, inputs=_pairs(inputs, "--input"), as_json=as_json,
        )  # fmt: skip
        return
    from edgeort.measure.bench import bench
    from edgeort.measure.targets import Knobs, source_model
    from edgeort.measure.text import format_bench

    resolved = _resolve(path, ep, ep_options, variant)
    _need_targets(resolved)
    baseline = source_model(resolved, compare or None) if compare is not None else None
    runs = runs if runs is not None or duration is not None else 50
    from edgeort.cli import is_quiet

    long_run = not (as_json or is_quiet()) and ((runs or 0) >= 200 or (duration or 0) >= 2)
    bar, update = _progress(long_run, runs, duration)
    report = bench(
        resolved.targets,
        compare=baseline,
        skipped=resolved.skipped,
        knobs=Knobs(threads=threads),
        input_files=_pairs(inputs, "--input"),
        dims=_dims(dims, resolved),
        warmup=warmup,
        runs=runs,
        duration=duration,
        on_progress=update,
    )
    if bar is not None:
        bar.render_finish()
    if as_json:
        _emit("bench", {"path": str(path), **report.to_json(), "machine": _machine(resolved)})
    else:
        _lines(format_bench(report))


def _farm_bench(
    path: Path,
    farm: str,
    variant: str | None,
    per_profile: int | None,
    merge: bool,
    runs: int | None,
    duration: float | None,
    warmup: int,
    threads: int | None,
    timeout: float | None,
    as_json: bool,
    tls: dict[str, Any],
) -> None:
    security = security_from(tls)
    from edgeort.farm.client import connect, farm_bench

    runs = runs if runs is not None or duration is not None else 50
    with connect(farm, security=security) as client:
        report = farm_bench(
            client, path, variant=variant, per_profile=per_profile, runs=runs, warmup=warmup,
            duration=duration, threads=threads, timeout=timeout, merge=merge,
            on_job=None if as_json else job_printer(False),
        )  # fmt: skip
    if as_json:
        _emit("bench", {"farm": farm, **report.to_json()})
    else:
        _lines(format_farm_bench(report))


@click.command("profile")
@_path_arg
@_variant_opt
@_ep_opt
@_ep_option_opt
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True,
              help="Profiled runs per target (the summary is per run).")  # fmt: skip
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True,
              help="Untimed runs before profiling (ORT's first runs allocate).")  # fmt: skip
@click.option(
    "--top", type=click.IntRange(min=1), default=10, show_default=True, help="Slowest nodes listed."
)
@click.option(
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the Chrome trace files (default: a new temporary folder; the path "
    "is printed).",
)
@_input_opt
@_dim_opt
@_json_opt
def profile_command(
    path: Path,
    variant: str | None,
    ep: str | None,
    ep_options: tuple[str, ...],
    runs: int,
    warmup: int,
    top: int,
    out_dir: Path | None,
    inputs: tuple[str, ...],
    dims: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run ORT's profiler: the Chrome trace, time per op type, the slowest nodes and the
    EP that ran each node. The trace goes to --output, or a new temporary folder."""
    import tempfile

    from edgeort.measure.text import format_profile
    from edgeort.measure.trace import profile_target

    resolved = _resolve(path, ep, ep_options, variant)
    _need_targets(resolved)
    if out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix="edgeort-profile-"))
    results = [
        profile_target(
            t,
            out_dir=out_dir,
            input_files=_pairs(inputs, "--input"),
            dims=_dims(dims, resolved),
            warmup=warmup,
            runs=runs,
            top=top,
        )
        for t in resolved.targets
    ]
    if as_json:
        data = {"results": [r.to_json() for r in results], "skipped": dict(resolved.skipped)}
        _emit("profile", {"path": str(path), **data})
        return
    out: list[str] = []
    for r in results:
        out += [*format_profile(r, top), ""]
    out += [f"skipped {k}: {v}" for k, v in resolved.skipped.items()]
    _lines(out)


@click.command("tune")
@_path_arg
@_variant_opt
@_ep_opt
@_ep_option_opt
@click.option(
    "--budget",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds of search per target.",
)
@click.option(
    "--runs",
    type=click.IntRange(min=3),
    default=15,
    show_default=True,
    help="Runs per measurement.",
)
@click.option("--save/--no-save", default=True, show_default=True, help="Write the tune cache.")
@_input_opt
@_dim_opt
@_json_opt
def tune_command(
    path: Path,
    variant: str | None,
    ep: str | None,
    ep_options: tuple[str, ...],
    budget: float,
    runs: int,
    save: bool,
    inputs: tuple[str, ...],
    dims: tuple[str, ...],
    as_json: bool,
) -> None:
    """Search threads, spinning, optimisation level, execution mode and EP knobs on this
    device within a time budget; save the best for edgeort.load()."""
    from dataclasses import replace

    from edgeort.measure.text import format_tune
    from edgeort.measure.tune import save_tuning, tune_target

    resolved = _resolve(path, ep, ep_options, variant)
    _need_targets(resolved)
    device = resolved.device if resolved.device is not None else _probe()
    given_dims, given_inputs = _dims(dims, resolved), _pairs(inputs, "--input")
    defaulted = _defaulted_dims(resolved, given_dims, given_inputs)
    if defaulted:
        click.echo(
            f"tune: dynamic dims {', '.join(defaulted)} set to 1: the settings found are the "
            "best for inputs that small, and can be slower at the sizes the model runs at; "
            "pass --dim NAME=N or --input NAME=FILE.npy with real sizes",
            err=True,
        )
    results = []
    for t in resolved.targets:
        result, _search = tune_target(
            t,
            budget_s=budget,
            device=device,
            runs=runs,
            input_files=given_inputs,
            dims=given_dims,
        )
        if save:
            result = replace(result, cache_path=save_tuning(result, t, device))
        results.append(result)
    if not save and not as_json:
        click.echo("not saved (--no-save): edgeort.load keeps its own settings", err=True)
    if as_json:
        data = {"results": [r.to_json() for r in results], "skipped": dict(resolved.skipped)}
        _emit("tune", {"path": str(path), **data})
        return
    out: list[str] = []
    for r in results:
        out += [*format_tune(r), ""]
    out += [f"skipped {k}: {v}" for k, v in resolved.skipped.items()]
    _lines(out)


def _defaulted_dims(resolved: Any, dims: dict[str, int], inputs: dict[str, str]) -> list[str]:
    """Dynamic dims past the first (batch 1 is how edge models run) that no --dim or
    --input sets, so they default to 1: the dim name, or ``input:axis`` if unnamed."""
    out: list[str] = []
    for t in resolved.targets:
        for spec in _inputs_of(t):
            if spec.name in inputs:
                continue
            for axis, key in dynamic_axes(spec):
                given = key in dims or f"{spec.name}:{axis}" in dims
                if axis and not given and key not in out:
                    out.append(key)
    return out


def _probe() -> Any:
    from edgeort.hardware import probe

    return probe()


@click.command("doctor")
@_path_arg
@_variant_opt
@_ep_opt
@_ep_option_opt
@click.option("--no-run", is_flag=True, help="Only the graph checks and partition reports.")
@_runtime_opt
@_json_opt
def doctor_command(
    path: Path,
    variant: str | None,
    ep: str | None,
    ep_options: tuple[str, ...],
    no_run: bool,
    runtime_name: str | None,
    as_json: bool,
) -> None:
    """Check a model or bundle for common ORT deployment problems (EP fallback, missing
    fusions, thread contention, arena growth, host<->device copies) and report, for every
    profile target, which nodes its EP would take (docs/doctor.md)."""
    if runtime_name is not None:
        from edgeort.cli.commands_runtimes import doctor_in_runtime

        doctor_in_runtime(path, runtime_name, as_json=as_json)
        return
    from edgeort.measure.doctor import doctor
    from edgeort.measure.text import format_doctor

    resolved = _resolve(path, ep, ep_options, variant)
    from edgeort.cli import is_quiet

    quiet = as_json or is_quiet()
    step = None if quiet else (lambda msg: click.echo(f"... {msg}", err=True))
    report = doctor(resolved, run=not no_run, on_step=step)
    if as_json:
        _emit("doctor", report.to_json())
    else:
        _lines(format_doctor(report))


COMMANDS: list[click.Command] = [bench_command, profile_command, tune_command, doctor_command]
