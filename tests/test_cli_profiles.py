"""``edgeort profiles list | show | check`` through click's test runner and ``main()``."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from edgeort.cli import cli, main
from edgeort.profiles import builtin_dir, builtin_profiles, get_profile, profile_to_dict

BAD_DIR = Path(__file__).parent / "data" / "profiles_bad"
MINE = """\
[profile]
name = "mine"
extends = "cpu-arm64"
description = "my arm board"

[match]
priority = 99
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["profiles", *args])


@pytest.mark.parametrize("command", [[], ["list"], ["show"], ["check"]])
def test_help_for_every_command(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    if command:
        assert f"profiles {command[0]}" in result.output


def test_list_shows_every_builtin_and_marks_defaults() -> None:
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "SHORT", "EP", "DEVICE", "PRIORITY", "SOURCE"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line and "*" not in line[:1]}
    for p in builtin_profiles():
        row = rows[p.name]
        assert row[1] == p.short + ("*" if p.default else "")
        assert row[2] == p.runtime.ep and row[4] == str(p.match.priority) and row[5] == "built-in"


def test_list_json_with_an_extra_profile_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(MINE)
    result = run("list", "--json", "--profile", str(mine))
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["name"] for e in entries] == [p.name for p in builtin_profiles()] + ["mine"]
    last = entries[-1]
    assert (last["priority"], last["extends"], last["builtin"]) == (99, "cpu-arm64", False)
    assert last["source"] == str(mine) and last["ep"] == "CPUExecutionProvider"


@pytest.mark.parametrize("name", ["qnn", "cpu-x86-64-vnni", "openvino-npu"])
def test_show_prints_toml_that_is_the_resolved_profile(name: str) -> None:
    result = run("show", name)
    assert result.exit_code == 0, result.output
    profile = get_profile(name, builtin_profiles())
    assert result.output.startswith(f"# {profile.name}: built-in\n")
    assert tomllib.loads(result.output) == profile_to_dict(profile)


def test_show_json_of_a_user_profile(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(MINE)
    result = run("show", "mine", "--json", "--profile", str(mine))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data.pop("source") == str(mine) and data.pop("builtin") is False
    arm = profile_to_dict(get_profile("cpu-arm64", builtin_profiles()))
    assert data["runtime"] == arm["runtime"] and data["model"] == arm["model"]
    assert data["match"]["priority"] == 99 and data["profile"]["extends"] == "cpu-arm64"


def test_show_unknown_name_fails_with_a_suggestion() -> None:
    result = run("show", "openvino-nup")
    assert result.exit_code == 3
    assert "did you mean 'openvino-npu'?" in result.output
    assert "Traceback" not in result.output


def test_check_good_files() -> None:
    result = run("check", str(builtin_dir() / "qnn-htp.toml"))
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"OK: {builtin_dir() / 'qnn-htp.toml'}: profile 'qnn-htp' (short name qnn, its default)\n"
    )


def test_check_a_user_file_that_extends(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(MINE)
    result = run("check", str(mine))
    assert result.exit_code == 0, result.output
    assert result.output == f"OK: {mine}: profile 'mine' (short name cpu, extends cpu-arm64)\n"


def test_check_bad_file_lists_every_problem_and_exits_3() -> None:
    fixture = BAD_DIR / "unknown_keys.toml"
    result = run("check", str(fixture))
    assert result.exit_code == 3
    assert result.output.startswith("edgeort: error: 7 problems in profiles:\n")
    problem_lines = [line for line in result.output.splitlines() if line.startswith("  - ")]
    assert len(problem_lines) == 7 and all(str(fixture) in line for line in problem_lines)
    assert (
        f"  - {fixture}: model.recipes.cnn[0].per_chanel: unknown key 'per_chanel'; "
        "did you mean 'per_channel'?" in problem_lines
    )


def test_check_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = run("check", str(missing))
    assert result.exit_code == 3
    assert result.output == (
        f"edgeort: error: {missing}: cannot read profile file: No such file or directory\n"
    )


def test_main_returns_the_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "check", str(BAD_DIR / "syntax_error.toml")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("edgeort: error: ") and "invalid TOML" in err and "line 5" in err
    assert main(["profiles", "show", "cpu", "--elsewhere"]) == 0
    assert 'name = "cpu-x86-64"' in capsys.readouterr().out
