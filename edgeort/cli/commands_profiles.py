"""CLI commands: ``edgeort profiles list | show | check``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from edgeort.profiles import (
    Profile,
    check_profile_file,
    get_profile,
    load_profiles,
    profile_to_dict,
    profile_to_toml,
)

__all__ = ["COMMANDS", "profiles"]

_PROFILE_OPTION = click.option(
    "--profile",
    "profile_files",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Add a profile file to the built-in and user profiles (repeatable).",
)
_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _source(profile: Profile) -> str:
    if profile.builtin:
        return "built-in"
    return str(profile.source) if profile.source else "code"


def _summary(profile: Profile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "short": profile.short,
        "default": profile.default,
        "description": profile.description,
        "version": profile.version,
        "ep": profile.runtime.ep,
        "device": profile.runtime.device,
        "package": profile.runtime.package,
        "priority": profile.match.priority,
        "extends": profile.extends,
        "builtin": profile.builtin,
        "source": str(profile.source) if profile.source else None,
    }


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


@click.group("profiles")
def profiles() -> None:
    """List, show and check device profiles.

    Profiles come from the built-in set, then *.toml files in the user profile
    directory ('edgeort profiles dir'), then each --profile FILE. A short name (cpu,
    openvino, qnn, coreml, nnapi, directml, tensorrt) stands for the best fitting
    profile of that name here, else its default (marked *).
    """


@profiles.command("list")
@_PROFILE_OPTION
@_JSON_OPTION
def list_profiles(profile_files: tuple[Path, ...], as_json: bool) -> None:
    """List every profile: name, short name, EP, device, priority and source."""
    loaded = load_profiles(profile_files)
    if as_json:
        click.echo(json.dumps([_summary(p) for p in loaded], indent=2))
        return
    rows = [("NAME", "SHORT", "EP", "DEVICE", "PRIORITY", "SOURCE")]
    for p in loaded:
        short = p.short + ("*" if p.default else "")
        rows.append(
            (
                p.name,
                short,
                p.runtime.ep,
                p.runtime.device or "any",
                str(p.match.priority),
                _source(p),
            )
        )
    click.echo(_table(rows))
    click.echo("\n* the default profile of its short name")


@profiles.command("show")
@click.argument("name")
@_PROFILE_OPTION
@_JSON_OPTION
@click.option("--elsewhere", is_flag=True,
              help="A short name takes its default profile, not the best fit for this "
                   "machine (as package --elsewhere does).")  # fmt: skip
def show_profile(
    name: str, profile_files: tuple[Path, ...], as_json: bool, elsewhere: bool
) -> None:
    """Show the resolved profile NAME as TOML. NAME is a profile name, or a short name
    (cpu, qnn...), which resolves as everywhere in edgeort: the best fitting profile of
    that short name here, else (or with --elsewhere) its default (docs/profiles.md)."""
    pool = load_profiles(profile_files)
    profile, why = _by_name(name, pool, elsewhere)
    if as_json:
        data = {**profile_to_dict(profile), "source": _summary(profile)["source"]}
        data["builtin"] = profile.builtin
        if why:
            data["resolved_from"] = {"short": name, "why": why}
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"# {profile.name}: {_source(profile)}")
    if why:
        click.echo(f"# short name {name!r}: {why}")
    if profile.extends:
        click.echo(f"# resolved: {profile.name} extends {profile.extends}")
    click.echo(profile_to_toml(profile), nl=False)


def _by_name(name: str, pool: Sequence[Profile], elsewhere: bool) -> tuple[Profile, str]:
    """The profile ``name`` stands for, and (for a short name) why that one."""
    if any(p.name == name for p in pool) or not any(p.short == name for p in pool):
        return get_profile(name, pool), ""  # exact name, or unknown (error + suggestion)
    from edgeort.profiles.match import resolve_target

    default = resolve_target(name, pool, None)
    if elsewhere:
        return default, f"its default profile (--elsewhere), {default.name}"
    from edgeort.hardware import probe

    here = resolve_target(name, pool, probe())
    if here.name == default.name:
        return here, f"{here.name} (the best fit here is also its default)"
    return here, f"{here.name}, the best fit here (its default, for elsewhere: {default.name})"


@profiles.command("dir")
@_JSON_OPTION
def profiles_dir(as_json: bool) -> None:
    """Print the directory edgeort reads user profiles (*.toml) from."""
    from edgeort.profiles import user_profile_dir

    path = user_profile_dir()
    if as_json:
        click.echo(json.dumps({"path": str(path), "exists": path.is_dir()}))
        return
    click.echo(str(path))


@profiles.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def check_profile(file: Path) -> None:
    """Check a profile FILE; print OK and its name, or every problem (exit code 3)."""
    profile = check_profile_file(file)
    notes = [f"short name {profile.short}"]
    if profile.default:
        notes.append("its default")
    if profile.extends:
        notes.append(f"extends {profile.extends}")
    click.echo(f"OK: {file}: profile {profile.name!r} ({', '.join(notes)})")


COMMANDS: list[click.Command] = [profiles]
