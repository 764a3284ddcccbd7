"""``edgeort run`` (load a bundle, run it once) and ``edgeort inspect`` (what is in a bundle
and which variant this device would pick, without creating a session)."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from edgeort.errors import DataError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import Variant

__all__ = ["COMMANDS", "generate_inputs", "parse_inputs"]

_BUNDLE = click.Path(exists=True, path_type=Path)


def parse_inputs(pairs: Sequence[str]) -> dict[str, np.ndarray]:
    """``["name=file.npy", ...]`` -> ``{name: array}`` (:func:`edgeort.feeds.read_npy`)."""
    from edgeort.feeds import read_npy

    feeds: dict[str, np.ndarray] = {}
    for pair in pairs:
        name, sep, file = pair.partition("=")
        if not sep or not name or not file:
            raise UsageError(f"--input {pair!r}: expected NAME=FILE.npy", option="--input")
        if name in feeds:
            raise UsageError(f"--input {name!r} given twice", option="--input")
        feeds[name] = read_npy(file, what=f"--input {name}")
    return feeds


def generate_inputs(specs: Sequence[Any], seed: int = 0) -> dict[str, np.ndarray]:
    """Random feeds that fit the signature (:func:`edgeort.feeds.random_feeds`: dynamic
    dims 1, the one rule for values)."""
    from edgeort.feeds import can_generate, random_feeds

    for spec in specs:
        if not can_generate(spec.dtype):
            raise UsageError(
                f"cannot generate input {spec.name!r} of dtype {spec.dtype}; give --input",
                option="--input",
            )
    return random_feeds(specs, seed=seed)


def _write_npz(path: Path, outputs: Mapping[str, np.ndarray]) -> None:
    from edgeort._fs import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(buffer, **dict(outputs))  # type: ignore[arg-type]
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc}", path=path) from exc


def _describe(arr: np.ndarray) -> dict[str, Any]:
    flat = arr.reshape(-1)[:8]
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "head": flat.tolist()}


@click.command("run")
@click.argument("bundle", type=_BUNDLE)
@click.option("-i", "--input", "input_pairs", multiple=True, metavar="NAME=FILE.npy",
              help="An input array (repeatable). Default: random, from the signature.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write all outputs to this .npz file.")  # fmt: skip
@click.option("--profile", help="Use this profile or variant name only.")
@click.option("--provider", "providers", multiple=True, metavar="EP",
              help="Allowed EPs in preference order (repeatable).")  # fmt: skip
@click.option("--strict", is_flag=True, help="No fallback; no node may fall back to the CPU EP.")
@click.option("--threads", type=click.IntRange(min=0), help="Intra-op threads (0 = ORT's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def run_command(
    bundle: Path,
    input_pairs: tuple[str, ...],
    output: Path | None,
    profile: str | None,
    providers: tuple[str, ...],
    strict: bool,
    threads: int | None,
    seed: int,
    as_json: bool,
) -> None:
    """Load BUNDLE on this device and run it once."""
    feeds = parse_inputs(input_pairs)
    report, outputs = _load_and_run(bundle, feeds, profile, providers, strict, threads, seed)
    if output is not None:
        _write_npz(output, outputs)
        report["output_file"] = str(output)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo("\n".join(_run_lines(report)))


def _load_and_run(
    bundle: Path,
    feeds: dict[str, np.ndarray],
    profile: str | None,
    providers: tuple[str, ...],
    strict: bool,
    threads: int | None,
    seed: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from edgeort.runtime import load

    with load(
        bundle,
        profile=profile,
        providers=list(providers) or None,
        strict=strict,
        threads=threads,
    ) as model:
        generated = not feeds
        if generated:
            feeds = generate_inputs(model.inputs, seed)
        outputs = model.run(feeds)
        variant = model.variant
        assert variant is not None  # load() always sets it
        report = {
            "bundle": str(bundle),
            "variant": variant.name,
            "ep": variant.ep,
            "providers": model.providers,
            "placement": model.placement().counts,
            "reasons": model.reasons,
            "inputs_generated": generated,
            "inputs": {k: _describe(v) for k, v in feeds.items()},
            "outputs": {k: _describe(v) for k, v in outputs.items()},
            "output_file": None,
        }
    return report, outputs


def _run_lines(report: Mapping[str, Any]) -> list[str]:
    lines = [f"Variant      {report['variant']} on {', '.join(report['providers'])}"]
    placement = ", ".join(f"{ep}: {n}" for ep, n in report["placement"].items())
    lines.append(f"Placement    {placement} node(s)")
    for name, why in report["reasons"].items():
        lines.append(f"  {name}: {why}")
    if report["inputs_generated"]:
        lines.append("No --input given: generated random inputs from the signature:")
    else:
        lines.append("Inputs:")
    for name, d in report["inputs"].items():
        lines.append(f"  {name}: {d['dtype']}{tuple(d['shape'])}")
    lines.append("Outputs:")
    for name, d in report["outputs"].items():
        head = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in d["head"])
        lines.append(
            f"  {name}: {d['dtype']}{tuple(d['shape'])}  [{head}{', ...' if head else ''}]"
        )
    if report["output_file"]:
        lines.append(f"Wrote {report['output_file']}")
    return lines


def _variant_info(variant: Variant) -> dict[str, Any]:
    meta = variant.metadata
    accuracy = meta.get("accuracy") if isinstance(meta.get("accuracy"), Mapping) else None
    latency = meta.get("latency") if isinstance(meta.get("latency"), Mapping) else None
    return {
        "name": variant.name,
        "ep": variant.ep,
        "device": variant.device or "any",
        "profile": variant.profile,
        "precision": variant.precision,
        "size": sum(f.size for f in variant.files),
        "accuracy": dict(accuracy) if accuracy else None,
        "latency": dict(latency) if latency else None,
        "gates": [dict(g) for g in meta.get("gates") or () if isinstance(g, Mapping)],
        "min_ort": variant.min_ort,
        "ep_package": variant.ep_package,
        "ep_refused": meta.get("ep_refused")
        if isinstance(meta.get("ep_refused"), Mapping)
        else None,
    }


def _accuracy_text(acc: Mapping[str, Any] | None) -> str:
    if not acc:
        return "not measured"
    passed = acc.get("passed")
    verdict = "passed" if passed is True else "FAILED" if passed is False else "?"
    bound = acc.get("bound", "?")
    return f"{acc.get('metric', '?')} {acc.get('value', '?')} (bound {bound}, {verdict})"


def _latency_text(lat: Mapping[str, Any] | None, gates: Sequence[Mapping[str, Any]] = ()) -> str:
    if not lat:  # the speed gate's record says why (simulated, absent, --no-speed...)
        why = next(
            (
                str(g.get("reason", "")).removeprefix("not measured: ")
                for g in gates
                if g.get("gate") == "speed" and g.get("decision") == "skip"
            ),
            "",
        )
        return f"not measured ({why or 'no latency recorded'})"
    return (
        f"{lat.get('ms_median', '?')} ms median on {lat.get('ep', '?')} ({lat.get('device', '?')})"
    )


def _requires_text(v: Mapping[str, Any]) -> str:
    """What the device must have installed for this variant."""
    package = v.get("ep_package") or "onnxruntime"
    ort_floor = f"onnxruntime >= {v['min_ort']}" if v.get("min_ort") else "onnxruntime"
    if package in ("onnxruntime", ""):
        return f"{ort_floor} ({v['ep']} is built in)"
    from edgeort.hardware.plugins import package_hint

    return f"{ort_floor} and {package} for {v['ep']} ({package_hint(package)})"


def _inspect_lines(info: Mapping[str, Any]) -> list[str]:
    lines = [f"Bundle       {info['bundle']} ({info['package']})", "Variants:"]
    for v in info["variants"]:
        lines.append(
            f"  {v['name']}: {v['ep']} ({v['device']}), {v['precision']}, "
            f"{v['size'] / 1e6:.2f} MB, profile {v['profile']}"
        )
        lines.append(f"      accuracy  {_accuracy_text(v['accuracy'])}")
        lines.append(f"      latency   {_latency_text(v['latency'], v['gates'])}")
        lines.append(f"      requires  {_requires_text(v)}")
        if v.get("ep_refused"):
            lines.append(
                f"      REFUSED   by {v['ep']} at build time: {v['ep_refused'].get('reason')}"
            )
        for g in v["gates"]:
            lines.append(
                f"      gate      {g.get('gate')}: {g.get('decision')} ({g.get('reason')})"
            )
    for failed in info.get("failed_targets") or ():
        why = failed.get("message") or failed.get("reason")
        lines.append(f"Left out     {failed.get('target')}: {why}")
    pick = info["pick"]
    lines.append(f"This device would pick: {pick or 'nothing (no variant can run here)'}")
    lines.append("Ranking (best first, then skipped):")
    for name, why in info["ranking"].items():
        lines.append(f"  {name}: {why}")
    return lines


@click.command("inspect")
@click.argument("bundle", type=_BUNDLE)
@click.option("--profile", help="Rank as load(profile=...) would.")
@click.option("--provider", "providers", multiple=True, metavar="EP",
              help="Rank as load(providers=[...]) would (repeatable).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def inspect_command(
    bundle: Path, profile: str | None, providers: tuple[str, ...], as_json: bool
) -> None:
    """Show BUNDLE's variants and which one this device would pick, and why (no session)."""
    from edgeort.bundle import open_bundle
    from edgeort.runtime import rank_bundle

    opened = open_bundle(bundle)
    ranking = rank_bundle(opened, profile=profile, providers=list(providers) or None)
    usable = ranking.usable
    info = {
        "bundle": str(bundle),
        "package": f"{opened.package_name} {opened.package_version}",
        "variants": [_variant_info(v) for v in opened.variants],
        "pick": usable[0].name if usable else None,
        "ranking": ranking.reasons(),
        "failed_targets": opened.metadata.get("failed_targets") or [],
    }
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo("\n".join(_inspect_lines(info)))


COMMANDS: list[click.Command] = [run_command, inspect_command]
