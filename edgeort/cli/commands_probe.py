"""``edgeort probe``: what this device is, and which device profiles fit it, best first.

``--json`` prints the stable form documented in ``docs/probe.md``:
``{"device": DeviceInfo.to_json(), "ranking": [Candidate.to_json(), ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from edgeort.hardware.device import DeviceInfo
from edgeort.profiles.match import Candidate

__all__ = ["COMMANDS", "format_device", "format_ranking"]

_GIB = 1024**3


@click.command("probe")
@click.option("--json", "as_json", is_flag=True, help="Print the documented JSON (docs/probe.md).")
@click.option(
    "--profile",
    "profile_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also rank this profile TOML file (repeatable).",
)
def probe_command(as_json: bool, profile_files: tuple[Path, ...]) -> None:
    """Describe this device and rank the device profiles that fit it."""
    from edgeort.hardware import probe
    from edgeort.profiles import load_profiles
    from edgeort.profiles.match import rank

    device = probe()
    ranking = rank(load_profiles(extra_paths=profile_files), device)
    if as_json:
        data = {"device": device.to_json(), "ranking": [c.to_json() for c in ranking]}
        click.echo(json.dumps(data, indent=2))
        return
    click.echo("\n".join([*format_device(device), "", *format_ranking(ranking)]))


def _cores(d: DeviceInfo) -> str:
    text = f"{d.physical_cores or '?'} physical / {d.logical_cores or '?'} logical"
    if d.performance_cores is not None:
        text += f" ({d.performance_cores} performance, {d.efficiency_cores or 0} efficiency)"
    return text


def _memory(d: DeviceInfo) -> str:
    if d.memory_total is None:
        return "unknown"
    avail = f", {d.memory_available / _GIB:.1f} GiB available" if d.memory_available else ""
    return f"{d.memory_total / _GIB:.1f} GiB total{avail}"


def _features(d: DeviceInfo) -> str:
    from edgeort.hardware import ARM_FLAGS, X86_FLAGS

    names = [f for f in (*X86_FLAGS, *ARM_FLAGS) if f in d.cpu_flags]
    return " ".join(names) or "none of the tracked ones"


def _plugins(d: DeviceInfo) -> list[str]:
    lines = []
    for p in d.plugin_eps:
        types = sorted(d.ep_device_types(p.ep_name))
        if not p.registered:
            state = f"not registered: {p.error or 'not attempted'}"
        else:
            state = f"registered, devices: {', '.join(types)}" if types else "registered, no device"
        lines.append(f"{p.ep_name} ({p.package} {p.version or '?'}): {state}")
    return lines or ["none installed"]


def format_device(d: DeviceInfo) -> list[str]:
    """The human summary of a :class:`DeviceInfo`, one line per item."""
    battery = "none"
    if d.battery is not None:
        plugged = {True: ", plugged in", False: ", on battery", None: ""}[d.battery.plugged]
        battery = f"{d.battery.percent:.0f}%{plugged}"
    accels = [f"{a.kind}:{a.vendor} {a.name} ({a.source})" for a in d.accelerators]
    devices = [f"{e.ep_name}: {e.device_type} {e.device_vendor}" for e in d.ep_devices]
    rows: list[tuple[str, Sequence[str]]] = [
        ("Device", [f"{d.os} {d.arch}, {d.os_version}"]),
        ("CPU", [f"{d.cpu_vendor or '?'}: {d.cpu_model or '?'}"]),
        ("Cores", [_cores(d)]),
        ("Features", [_features(d)]),
        ("Memory", [_memory(d)]),
        ("Battery", [battery]),
        ("SoC", [d.soc or "-"]),
        ("Accelerators", accels or ["none found"]),
        ("ONNX Runtime", [f"{d.ort_version or 'not installed'}"]),
        ("Built-in EPs", [", ".join(d.ort_build_providers) or "none"]),
        ("Plugin EPs", _plugins(d)),
        ("EP devices", devices or ["none"]),
        ("Notes", list(d.notes) or ["-"]),
        ("Not found", [f"{k}: {v}" for k, v in d.absent.items()] or ["-"]),
    ]
    out = []
    for label, values in rows:
        for i, value in enumerate(values):
            out.append(f"{label if i == 0 else '':<13} {value}")
    return out


def format_ranking(ranking: Sequence[Candidate]) -> list[str]:
    """The ranking table: fitting profiles best first, then the excluded ones."""
    if not ranking:
        return ["No device profiles loaded."]
    width = max(len(c.profile.name) for c in ranking)
    out = ["Profiles (best first):"]
    for c in ranking:
        mark = "fits" if c.fits else "no"
        if c.fits and c.simulated:
            mark = "sim"
        head = f"  {mark:<4} {c.profile.name:<{width}}  {c.profile.runtime.ep}"
        out.append(f"{head}  priority {c.score}, {c.threads} threads")
        out.extend(f"         - {reason}" for reason in c.reasons)
    out.append("(sim = fits, but the EP runs in simulation here)")
    return out


COMMANDS: list[click.Command] = [probe_command]
