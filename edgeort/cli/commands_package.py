"""``edgeort package``: one ONNX model -> one verified multi-variant bundle.

Progress goes to stderr as one status line per step and target. With ``--json``, stdout
carries one JSON object per line: ``{"event": {...}}`` for every progress event, then
``{"result": {...}}`` (or ``{"error": {...}}``) last. Native libraries that print to
file descriptor 1 (the QNN simulator does) are sent to stderr by :func:`edgeort.cli.main`,
so stdout stays parseable.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from edgeort.cli.commands_farm import farm_options, job_printer, need_farm, security_from
from edgeort.errors import EdgeortError, UsageError

__all__ = ["COMMANDS", "format_result"]


def _line(out: IO[str], obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, sort_keys=True) + "\n")
    out.flush()


def _error(exc: EdgeortError) -> dict[str, Any]:
    """The ``{"error": ...}`` line's body: ``--json``'s last line when a command fails."""
    return dict(exc.to_json())


_BAR = 24


def _status(event: Any) -> None:
    """On a terminal: one progress bar line, redrawn per event (warnings and each
    target's verdict stay on screen). Elsewhere (logs, CI): one line per event."""
    from edgeort.cli import is_quiet

    if is_quiet() and event.kind != "warning":
        return
    fraction = event.fraction or 0.0
    where = f"{event.target} " if event.target else ""
    tag = "warning: " if event.kind == "warning" else ""
    text = f"{where}{event.step}: {tag}{event.message}"
    if not _tty():
        click.echo(f"[{round(100 * fraction):3d}%] {text}", err=True)
        return
    filled = round(_BAR * fraction)
    bar = f"[{'#' * filled}{'.' * (_BAR - filled)}] {round(100 * fraction):3d}% "
    width = max(20, shutil.get_terminal_size().columns - len(bar) - 1)
    keep = event.kind in {"warning", "done"} and event.step in {"verify", "write", "load"}
    click.echo(f"\r\033[K{bar}{text[:width]}", err=True, nl=keep or fraction >= 1.0)


def _tty() -> bool:
    return sys.stderr.isatty()


def _fmt(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def format_result(result: Any) -> list[str]:
    """The human summary: one line per variant."""
    lines = [f"{result.path}: {len(result.variants)} variant(s), {result.family} model"]
    for v in result.variants:
        acc = v.accuracy
        gate = "passed" if acc.get("passed") else "FAILED"
        top1 = ""
        if acc.get("top1_accuracy") is not None:
            top1 = f", top-1 {acc['top1_accuracy']:.4f}"
        latency = f", {v.latency['ms_median']:.3f} ms" if v.latency else ""
        refused = f"; REFUSED by {v.ep} here: {v.ep_refused['reason']}" if v.ep_refused else ""
        runtime = acc.get("runtime")
        where = ""
        if isinstance(runtime, dict):
            where = (
                f" in runtime {runtime.get('name')} ({runtime.get('ort_build')} "
                f"{runtime.get('ort_build_version')})"
            )
        lines.append(
            f"  {v.name}: {v.precision} {v.model_file} for {v.ep}; {acc.get('metric')} "
            f"{_fmt(acc.get('value'))} (bound {_fmt(acc.get('bound'))}, {gate}){top1}; "
            f"verified on {acc.get('on_ep')}{where} with "
            f"{acc.get('data_source', acc.get('data'))} data{latency}{refused}"
        )
    for f in getattr(result, "failed", ()):
        lines.append(f"  {f.target}: LEFT OUT ({f.error}): {f.message}")
    return lines


def _state(values: tuple[str, ...], none: bool) -> dict[str, str] | None:
    from edgeort.pack.state import parse_state

    if none and values:
        raise UsageError("--no-state and --state exclude each other", option="--state")
    if none:
        return {}
    if not values:
        return None  # detect
    pairs = dict(parse_state(v) for v in values)
    if len(pairs) != len(values):
        raise UsageError("--state: an input is named twice", option="--state")
    return pairs


T = TypeVar("T")


def _named(
    values: tuple[str, ...], option: str, parse: Callable[[str], tuple[str, T]]
) -> dict[str, T]:
    """``NAME=...`` options (``--shape``, ``--freeze``) by name; a name given twice is a
    usage error."""
    out: dict[str, T] = {}
    for text in values:
        name, value = parse(text)
        if name in out:
            raise UsageError(f"{option} {name}=... given twice", option=option)
        out[name] = value
    return out


def _shapes(values: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    from edgeort.pack.prepare import parse_shape

    return _named(values, "--shape", parse_shape)


def _freeze(values: tuple[str, ...]) -> dict[str, str]:
    from edgeort.pack.freeze import parse_freeze

    return _named(values, "--freeze", parse_freeze)


@click.command("package")
@click.argument(
    "models", metavar="MODEL...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "-t", "--target", "targets", multiple=True, required=True,
    help="Profile name or short name (cpu, openvino, qnn, coreml, nnapi, directml...). Repeatable.",
)  # fmt: skip
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="The bundle to write (a directory; a .zip file with --zip). With several "
                   "models: a folder getting one <model stem>.ortpackage (.zip) each.")  # fmt: skip
@click.option("--calibration", type=click.Path(path_type=Path),
              help=".npz (one array per input name, first axis = samples) or a directory of "
              "<input>.npy files; needed by static quantization.")  # fmt: skip
@click.option("--validation", type=click.Path(path_type=Path),
              help="Data to verify variants on (same format; optional __labels__).")  # fmt: skip
@click.option("--shape", "shape_values", multiple=True, metavar="NAME=D1,D2,...",
              help="Fixed input shape for targets that need fixed shapes. Repeatable.")  # fmt: skip
@click.option("--freeze", "freeze_values", multiple=True, metavar="NAME=VALUE",
              help="For targets that fix shapes: input NAME always gets VALUE (e.g. sr=16000); "
                   "its uses become a constant and If nodes it decides keep one branch. "
                   "Repeatable.")  # fmt: skip
@click.option("--max-drop", type=float, default=None,
              help="Override the profiles' accuracy bound (1-cosine or top-1 drop).")  # fmt: skip
@click.option("--zip", "as_zip", is_flag=True, help="Write the bundle as one .zip file.")
@click.option("--profile", "profile_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also load this profile TOML file (repeatable).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON line per event, then the result.")
@click.option("--no-speed", is_flag=True, help="Do not measure latency (no speed gate).")
@click.option("--state", "state_values", multiple=True, metavar="IN=OUT",
              help="A state pair: output OUT is fed back as input IN on the next call "
                   "(calibration and verification run over sequences). Repeatable; "
                   "replaces detection.")  # fmt: skip
@click.option("--no-state", is_flag=True, help="The model has no state pairs (no detection).")
@click.option("--family", "family", default=None, metavar="FAMILY",
              help="What the model does: classifier, detector[:yolov8|yolov5|yolox], segmenter, "
                   "recognizer, scores, encoder or generic (picks the recipes and the accuracy "
                   "metric); read off the graph when not given.")  # fmt: skip
@click.option("--metric", default=None,
              type=click.Choice(
                  ["top1", "boxes", "map_iou", "ctc", "decision", "embedding", "cosine"]
              ),
              help="The accuracy gate's metric instead of the family's.")  # fmt: skip
@click.option("--elsewhere", is_flag=True,
              help="Packaging for other devices: short names take the default profile, "
                   "not the best fit for this machine.")  # fmt: skip
@click.option("--keep-going", is_flag=True,
              help="Write the bundle with the targets that passed and list those that failed "
                   "(without it a failing target writes nothing); a variant its EP refuses "
                   "here is kept, recorded as refused.")  # fmt: skip
@click.option("--name", "package_name", metavar="NAME",
              help="The bundle's package_name (default: the model file's name).")  # fmt: skip
@click.option("--version", "package_version", metavar="VERSION",
              help="The bundle's package_version (default: 1).")  # fmt: skip
@click.option("--runtimes", "runtimes", multiple=True, metavar="auto|none|NAME",
              help="Where targets whose EP does not run in this process are verified: "
                   "'auto' (default: a created target runtime that runs the EP), 'none', or "
                   "runtime names (used for every target whose EP they run).")  # fmt: skip
@click.option("--allow-install", is_flag=True,
              help="--runtimes auto may create a missing built-in runtime (network "
                   "install).")  # fmt: skip
@click.option("--min-ort", metavar="X.Y",
              help="Oldest onnxruntime the bundle must load in: down-convert opset and IR "
                   "version where possible (recorded per variant).")  # fmt: skip
@farm_options
def package_command(
    models: tuple[Path, ...],
    targets: tuple[str, ...],
    output: Path,
    calibration: Path | None,
    validation: Path | None,
    shape_values: tuple[str, ...],
    freeze_values: tuple[str, ...],
    max_drop: float | None,
    as_zip: bool,
    profile_files: tuple[Path, ...],
    as_json: bool,
    no_speed: bool,
    state_values: tuple[str, ...],
    no_state: bool,
    keep_going: bool,
    family: str | None,
    metric: str | None,
    elsewhere: bool,
    package_name: str | None,
    package_version: str | None,
    runtimes: tuple[str, ...],
    allow_install: bool,
    min_ort: str | None,
    farm: str | None,
    farm_timeout: float | None,
    **tls: Any,
) -> None:
    """Package each MODEL for every target into one verified bundle; with --farm, as one
    job per (model, target) on the device farm (docs/farm.md)."""
    from edgeort.pack import package

    if farm is not None:
        for option, given in (("--keep-going", keep_going), ("--runtimes", runtimes),
                              ("--allow-install", allow_install)):  # fmt: skip
            if given:
                raise UsageError(
                    f"{option} does not apply with --farm: a model with a failed farm job "
                    "gets no bundle, and each job is verified on the worker the farm routes "
                    "it to (docs/farm.md)",
                    option=option,
                )
    else:
        need_farm(farm_timeout, tls)
    out = sys.stdout
    try:
        # what a local run and a farm job both take, parsed once
        common: dict[str, Any] = {
            "calibration": calibration,
            "validation": validation,
            "shapes": _shapes(shape_values),
            "freeze": _freeze(freeze_values),
            "state": _state(state_values, no_state),
            "max_drop": max_drop,
            "zip": as_zip,
            "measure_speed": not no_speed,
            "here": not elsewhere,
            "family": family,
            "metric": metric,
            "name": package_name,
            "version": package_version,
            "min_ort": min_ort,
        }
        if farm is not None:
            _farm_package(models, targets, output, profile_files, as_json, farm, farm_timeout,
                          tls, common)  # fmt: skip
            return
        from edgeort.farm.client import bundle_paths

        local: dict[str, Any] = {
            "profiles": list(profile_files) or None,
            "keep_going": keep_going,
            "runtimes": list(runtimes) or "auto",
            "allow_install": allow_install,
        }
        on_event = (lambda e: _line(out, e.to_json())) if as_json else _status
        for model, path in zip(models, bundle_paths(list(models), output, as_zip), strict=True):
            result = package(model, targets, output=path, on_event=on_event, **common, **local)
            if as_json:
                _line(out, {"result": result.to_json()})
            else:
                out.write("\n".join([*format_result(result), *result.notes]) + "\n")
    except EdgeortError as exc:
        if as_json:
            error = _error(exc)
            if farm is not None:
                from edgeort.farm.client import FarmReportError

                if isinstance(exc, FarmReportError):  # which jobs failed, and why
                    error["report"] = exc.report.to_json()
            _line(out, {"error": error})
        raise


def _farm_package(
    models: tuple[Path, ...],
    targets: tuple[str, ...],
    output: Path,
    profile_files: tuple[Path, ...],
    as_json: bool,
    farm: str,
    timeout: float | None,
    tls: dict[str, Any],
    common: dict[str, Any],
) -> None:
    security = security_from(tls)
    from edgeort.farm.client import connect, farm_package

    with connect(farm, security=security) as client:
        report = farm_package(
            client, models, targets, output=output, profile_files=profile_files,
            timeout=timeout, on_job=job_printer(as_json, sys.stdout), **common,
        )  # fmt: skip
    if as_json:
        _line(sys.stdout, {"result": report.to_json()})
    else:
        sys.stdout.write("\n".join(f"wrote {p}" for p in report.bundles) + "\n")


COMMANDS: list[click.Command] = [package_command]
