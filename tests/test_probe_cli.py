"""``edgeort probe`` through click's CliRunner, and docs/probe.md against the real JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from edgeort.cli import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "probe.md"


def _paths(value: Any, prefix: str) -> set[str]:
    """Every key path in a JSON value: ``device.accelerators[].kind`` style."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}"
            out.add(path)
            if not path.endswith((".metadata", ".absent")):  # free-form maps
                out |= _paths(sub, path)
    elif isinstance(value, list):
        for item in value:
            out |= _paths(item, f"{prefix}[]")
    return out


def _documented() -> set[str]:
    return set(re.findall(r"^\| `([a-z_\[\].]+)` \|", DOC.read_text(), flags=re.M))


def test_probe_json_parses_and_every_field_is_documented() -> None:
    result = CliRunner().invoke(cli, ["probe", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"device", "ranking"}
    assert data["device"]["schema"] == 1
    assert data["ranking"], "the built-in profiles are ranked"
    fits = [entry["fits"] for entry in data["ranking"]]
    assert fits == sorted(fits, reverse=True)
    documented = _documented()
    found = _paths(data["device"], "device") | _paths(data["ranking"], "ranking")
    assert found - documented == set()
    # the documented device fields are exactly DeviceInfo's JSON fields
    top = {p for p in documented if p.count(".") == 1 and p.startswith("device.")}
    assert top == {f"device.{k}" for k in data["device"]}


def test_probe_human_summary_and_ranking() -> None:
    result = CliRunner().invoke(cli, ["probe"])
    assert result.exit_code == 0, result.output
    for label in ("Device", "CPU", "Cores", "Features", "Memory", "Plugin EPs", "EP devices"):
        assert any(line.startswith(label) for line in result.output.splitlines()), label
    assert "Profiles (best first):" in result.output
    assert "CPUExecutionProvider" in result.output


def test_probe_ranks_an_extra_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[profile]\nname = "my-cpu-amx"\ndescription = "needs AMX"\nversion = "1"\n'
        'short = "cpu"\n\n[match]\ncpu_flags_all = ["amx_int8", "amx_tile"]\npriority = 99\n\n'
        '[runtime]\nep = "CPUExecutionProvider"\n'
    )
    result = CliRunner().invoke(cli, ["probe", "--json", "--profile", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    [mine] = [e for e in data["ranking"] if e["profile"] == "my-cpu-amx"]
    assert mine["source"] == str(path)
    flags = set(data["device"]["cpu_flags"])
    assert mine["fits"] == ({"amx_int8", "amx_tile"} <= flags)
    if not mine["fits"]:
        missing = [f for f in ("amx_int8", "amx_tile") if f not in flags]
        assert f"CPU lacks {', '.join(missing)} (cpu_flags_all)" in mine["reasons"]


def test_probe_missing_profile_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["probe", "--profile", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "nope.toml" in result.output
