"""The README's two commands are real: CI runs the second verbatim, and the edgeort part
of the first packages and runs the example (the pip install part is what CI does)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)[:2]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    first, second = _commands()
    assert "pip install" in first and "edgeort package examples/" in first
    assert "pip install" in second and "pytest" in second
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert second in ci.splitlines()


def test_ci_log_lists_skips_and_failures_with_their_reasons() -> None:
    """``-r`` replaces pyproject's ``-ra`` rather than adding to it: it must keep f, E, s."""
    second = _commands()[1]
    (chars,) = re.findall(r"\.venv/bin/pytest .*-r(\w+)", second)
    assert {"f", "E", "s"} <= set(chars) or "a" in chars, chars


@pytest.mark.slow
def test_first_command_packages_and_runs_the_example(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    steps = [s.strip() for s in _commands()[0].split("&&")]
    edgeort_steps = [s for s in steps if s.startswith(".venv/bin/edgeort ")]
    assert len(edgeort_steps) == 2
    for step in edgeort_steps:
        argv = shlex.split(step)[1:]
        done = subprocess.run(
            [sys.executable, "-m", "edgeort", *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    bundle = tmp_path / "digits.ortpackage"
    assert (bundle / "manifest.json").is_file()
    assert "Outputs:" in done.stdout and "logits" in done.stdout
    # the README's Python example runs against the bundle the first command wrote
    text = (REPO / "README.md").read_text(encoding="utf-8")
    (snippet,) = re.findall(r"```python\n(.+?)\n```", text, flags=re.S)[:1]
    ran = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "CPUExecutionProvider" in ran.stdout


def test_every_command_but_profiles_check_takes_json() -> None:
    import click

    from edgeort.cli import cli

    def leaves(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
        out: list[tuple[str, click.Command]] = []
        for name, cmd in group.commands.items():
            path = f"{prefix} {name}".strip()
            out += leaves(cmd, path) if isinstance(cmd, click.Group) else [(path, cmd)]
        return out

    commands = dict(leaves(cli, ""))
    assert {"probe", "package", "run", "inspect", "bench", "doctor"} <= set(commands)
    without = {p for p, c in commands.items() if not any("--json" in o.opts for o in c.params)}
    assert without == {"profiles check"}
    assert "except `profiles check`" in (REPO / "README.md").read_text(encoding="utf-8")
