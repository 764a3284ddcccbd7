"""``edgeort runtimes add | list | remove``, and ``bench``/``doctor`` inside a runtime
(``--runtime NAME``): docs/runtimes.md."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

from edgeort.errors import UsageError

__all__ = ["COMMANDS", "bench_in_runtime", "doctor_in_runtime"]


@click.group("runtimes")
def runtimes_group() -> None:
    """Target runtimes: isolated environments with one ONNX Runtime build each
    (onnxruntime-openvino, an older onnxruntime, a plugin) to verify and measure in."""


def _requirements(values: tuple[str, ...]) -> list[str]:
    """``-r`` values: requirement strings, or requirements files (one per line)."""
    out: list[str] = []
    for value in values:
        path = Path(value)
        if path.suffix == ".txt" or path.is_file():
            try:
                lines = path.read_text("utf-8").splitlines()
            except OSError as exc:
                raise UsageError(f"-r {value}: cannot read it: {exc}", option="-r") from exc
            out += [ln.split("#", 1)[0].strip() for ln in lines]
        else:
            out.append(value)
    reqs = [r for r in out if r]
    for req in reqs:
        if req.startswith("-"):
            raise UsageError(f"-r: {req!r}: only requirement lines (no pip options)", option="-r")
    return reqs


@runtimes_group.command("add")
@click.argument("name")
@click.option("-r", "--requirement", "requirements", multiple=True, metavar="REQ|FILE",
              help="A requirement (onnxruntime==1.24.4) or a requirements file; repeatable. "
                   "Default: the built-in recipe NAME.")  # fmt: skip
@click.option("--force", is_flag=True, help="Re-create it if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the runtime as JSON.")
def add_command(name: str, requirements: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Create (or reuse) the runtime NAME in the user cache dir (a network install)."""
    from edgeort.runtimes import add

    def say(message: str) -> None:
        click.echo(message, err=True)

    runtime = add(name, _requirements(requirements) or None, force=force, on_progress=say)
    if as_json:
        click.echo(json.dumps(runtime.to_json(), indent=2))
    else:
        click.echo(f"{runtime.name}: {runtime.ort_build} at {runtime.root}")


def _row(runtime: Any, check: bool) -> dict[str, Any]:
    from edgeort.runtimes import health

    data: dict[str, Any] = dict(runtime.to_json())
    info = runtime.info
    if check:
        state = health(runtime)
        if state["ok"]:
            info = state["info"]
        data["health"] = "ok" if state["ok"] else f"broken: {state['error']}"
    else:
        data["health"] = "not checked"
    data.update(
        ort_build=info.get("ort_build"),
        ort_build_version=info.get("ort_build_version"),
        onnxruntime=info.get("onnxruntime"),
        providers=info.get("providers", []),
        devices=info.get("ep_devices", []),
        build_devices=info.get("build_devices", {}),
    )
    return data


@runtimes_group.command("list")
@click.option("--no-check", is_flag=True, help="Do not start each runtime's worker.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(no_check: bool, as_json: bool) -> None:
    """Created runtimes: ORT build and version, EPs, devices and health."""
    from edgeort.runtimes import BUILTIN_RECIPES, list_runtimes, runtimes_dir

    rows = [_row(r, not no_check) for r in list_runtimes()]
    if as_json:
        click.echo(json.dumps({"dir": str(runtimes_dir()), "runtimes": rows}, indent=2))
        return
    if not rows:
        click.echo(f"no runtimes in {runtimes_dir()}")
    for row in rows:
        devices = list(row["devices"])
        for ep, ids in row["build_devices"].items():
            devices.append(f"{ep}:{'/'.join(ids).lower() or '?'} (compiled in)")
        click.echo(f"{row['name']}: {row['ort_build']} {row['ort_build_version']} "
                   f"(onnxruntime {row['onnxruntime']}), {row['health']}")  # fmt: skip
        click.echo(f"  EPs      {', '.join(row['providers'])}")
        click.echo(f"  devices  {', '.join(devices)}")
        click.echo(f"  path     {row['path']}")
    missing = [n for n in BUILTIN_RECIPES if n not in {r["name"] for r in rows}]
    if missing:
        click.echo(f"built-in, not created: {', '.join(missing)} (edgeort runtimes add NAME)")


@runtimes_group.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def remove_command(name: str, as_json: bool) -> None:
    """Delete the runtime NAME."""
    from edgeort.runtimes import remove

    path = remove(name)
    if as_json:
        click.echo(json.dumps({"removed": name, "path": str(path)}))
    else:
        click.echo(f"removed {path}")


# -- bench / doctor inside a runtime ---------------------------------------------------


def _bundle_path(path: Path) -> str:
    if path.suffix == ".onnx" or (path.is_file() and path.suffix != ".zip"):
        raise UsageError(
            f"{path}: --runtime measures a bundle (a directory or .zip); package the model "
            "first (edgeort package)",
            option="--runtime",
        )
    return str(path.resolve())


def _label(env: dict[str, Any], support: str | None) -> str:
    text = (
        f"runtime ORT {env.get('onnxruntime')} ({env.get('ort_build')} "
        f"{env.get('ort_build_version')})"
    )
    return f"{text}; {support}" if support else text


def bench_in_runtime(
    path: Path,
    runtime_name: str,
    *,
    variant: str | None,
    runs: int,
    warmup: int,
    threads: int | None,
    inputs: dict[str, str],
    as_json: bool,
) -> None:
    """``edgeort bench --runtime NAME``: every variant the runtime can run, timed there."""
    import numpy as np

    from edgeort.hardware.ep import support_note
    from edgeort.runtimes import get

    runtime = get(runtime_name)
    feeds = {}
    with tempfile.TemporaryDirectory(prefix="edgeort-bench-") as tmp:
        for index, (name, file) in enumerate(inputs.items()):
            try:
                array = np.load(file, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise UsageError(f"--input {name}={file}: {exc}", option="--input") from exc
            dest = Path(tmp) / f"in{index}.npy"
            np.save(dest, array)
            feeds[name] = {"npy": str(dest), "whole": True}
        request = {
            "job": "bench",
            "bundle": _bundle_path(path),
            "variant": variant,
            "runs": runs,
            "warmup": warmup,
            "threads": threads,
            "inputs": feeds or None,
        }
        with runtime.worker() as worker:
            report = worker.call(request)
    vendor = str(runtime.info.get("cpu_vendor", ""))
    for row in report["results"]:
        row["support"] = support_note(str(row["ep"]), vendor)
        row["latency"].pop("times_ms", None)
    if as_json:
        click.echo(json.dumps({"command": "bench", "schema": 1, "path": str(path),
                               "runtime": runtime_name, **report}, indent=2))  # fmt: skip
        return
    env = report["environment"]
    click.echo(f"{path} in runtime {runtime_name}: {_label(env, None)}")
    for row in report["results"]:
        lat = row["latency"]
        extra = f"  [{row['support']}]" if row["support"] else ""
        click.echo(
            f"  {row['variant']} on {row['ep']}: median {lat['ms_median']:.4f} ms, "
            f"p90 {lat['ms_p90']:.4f} ms, min {lat['ms_min']:.4f} ms ({lat['runs']} runs){extra}"
        )
    for name, why in report["skipped"].items():
        click.echo(f"  {name}: skipped: {why}")


def doctor_in_runtime(path: Path, runtime_name: str, *, as_json: bool) -> None:
    """``edgeort doctor --runtime NAME``: what the runtime's loader makes of the bundle."""
    from edgeort.hardware.ep import support_note
    from edgeort.runtimes import get

    runtime = get(runtime_name)
    with runtime.worker() as worker:
        report = worker.call({"job": "doctor", "bundle": _bundle_path(path)})
    env = report["environment"]
    run = report.get("run", {})
    support = support_note(str(run.get("ep", "")), str(env.get("cpu_vendor", "")))
    if as_json:
        run.get("latency", {}).pop("times_ms", None)
        click.echo(json.dumps({"command": "doctor", "schema": 1, "path": str(path),
                               "runtime": runtime_name, "support": support, **report},
                              indent=2))  # fmt: skip
        return
    click.echo(f"{path} in runtime {runtime_name}: {_label(env, support)}")
    click.echo(f"  EPs: {', '.join(env.get('providers', []))}")
    for note in env.get("notes", []):
        click.echo(f"  note: {note}")
    for row in report["variants"]:
        state = "usable" if row["usable"] else "skipped"
        click.echo(f"  {row['variant']} ({row['ep']}): {state}: {row['reason']}")
    if "error" in run:
        click.echo(f"  run: {run['error']['type']}: {run['error']['message']}")
    elif run:
        lat = run.get("latency", {})
        click.echo(
            f"  run: picked {run['variant']} on {run['ep']}, placement {run['placement']}, "
            f"median {lat.get('ms_median', 0):.4f} ms over {lat.get('runs')} runs"
        )


COMMANDS: list[click.Command] = [runtimes_group]
