"""Issue "a user's first hour": the CLI people expect (verbosity anywhere, sign/keygen/
verify, cache and profiles dir, package --name/--version, help on every option, where
traces and tune results go, completion), and ``--json`` that is pure JSON in a fresh
process with the QNN and OpenVINO plugins installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from edgeort.cli import cli as root
from tests.conftest import REPO
from tests.first_hour_support import HAS_QNN, Tiny, edgeort, make_tiny, needs_qnn

Cap = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return make_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def bundle(tiny: Tiny) -> Path:
    from edgeort.pack import package

    targets = ["cpu", "qnn"] if HAS_QNN else ["cpu"]
    result = package(
        tiny.model, targets, output=tiny.folder / "tiny.ortpackage",
        calibration=tiny.calibration, measure_speed=False, name="tiny-demo", version="2.1",
    )  # fmt: skip
    return result.path


def _commands(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _commands(sub, (*path, name))
    else:
        yield path


def _command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = root
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


COMMANDS = list(_commands(root))


def test_the_new_commands_exist() -> None:
    for path in (("sign",), ("keygen",), ("verify",), ("cache", "dir"), ("cache", "clear"),
                 ("profiles", "dir")):  # fmt: skip
        assert path in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_option_has_help_text(path: tuple[str, ...]) -> None:
    cmd = _command(path)
    assert cmd.help, f"edgeort {' '.join(path)} has no help"
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"edgeort {' '.join(path)} {param.opts[0]} has no help text"


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_verbose_and_quiet_work_before_or_after_every_command(
    path: tuple[str, ...], capsys: Cap
) -> None:
    for args in (["-v", *path, "--help"], [*path, "--help", "-v"], [*path, "-q", "--help"],
                 [*path, "--help", "--quiet"], [*path, "-vv", "--help"]):  # fmt: skip
        run = edgeort(capsys, *args)
        assert run.rc == 0, (args, run.err)
        assert "Usage: edgeort" in run.out


def test_verbose_and_quiet_change_what_a_real_command_prints(capsys: Cap) -> None:
    quiet = edgeort(capsys, "probe", "--json", "-q")
    assert quiet.rc == 0 and json.loads(quiet.out)["device"]
    both = edgeort(capsys, "probe", "-v", "-q")
    assert both.rc == 2 and "give one of them" in both.err
    bare = edgeort(capsys, "-q")
    assert bare.rc == 2 and bare.err.startswith("edgeort: error: Missing command")


def test_quiet_package_prints_no_progress(tiny: Tiny, tmp_path: Path, capsys: Cap) -> None:
    out = tmp_path / "q.ortpackage"
    run = edgeort(capsys, "package", tiny.model, "-t", "cpu", "--calibration",
                  tiny.calibration, "-o", out, "--no-speed", "-q")  # fmt: skip
    assert run.rc == 0 and "[" not in run.err and "q.ortpackage: 1 variant(s)" in run.out


def test_keygen_sign_verify(bundle: Path, tmp_path: Path, capsys: Cap) -> None:
    pytest.importorskip("cryptography", reason="the signing extra is not installed")
    import shutil

    copy = tmp_path / "b.ortpackage"
    shutil.copytree(bundle, copy)
    key = tmp_path / "release.pem"
    made = edgeort(capsys, "keygen", "-o", key)
    assert made.rc == 0 and (tmp_path / "release.pub.pem").is_file() and "key id" in made.out
    assert edgeort(capsys, "keygen", "-o", key).rc == 2  # never overwrites silently
    unsigned = edgeort(capsys, "verify", copy, "--key", tmp_path / "release.pub.pem")
    assert unsigned.rc == 8 and "is not signed" in unsigned.err  # SignatureError
    assert edgeort(capsys, "sign", copy, "--key", key).rc == 0
    ok = edgeort(capsys, "verify", copy, "--key", tmp_path / "release.pub.pem")
    assert ok.rc == 0 and ok.out.startswith(f"OK: {copy}: tiny-demo 2.1") and "verified" in ok.out
    other = tmp_path / "other.pem"
    edgeort(capsys, "keygen", "-o", other)
    wrong = edgeort(capsys, "verify", copy, "--key", tmp_path / "other.pub.pem")
    assert wrong.rc == 8 and "not one of the 1 trusted keys" in wrong.err
    model = next(copy.rglob("model.onnx"))
    model.write_bytes(model.read_bytes() + b"x")
    tampered = edgeort(capsys, "verify", copy)
    assert tampered.rc == 7 and "model.onnx" in tampered.err  # IntegrityError names the file


def test_cache_dir_and_clear(capsys: Cap) -> None:
    from edgeort._dirs import cache_dir

    root_dir = cache_dir()
    for part in ("tune/a.json", "bundles/x/manifest.json", "signing/sequences.json",
                 "plans/p.json", "someone-else/keep.txt"):  # fmt: skip
        (root_dir / part).parent.mkdir(parents=True, exist_ok=True)
        (root_dir / part).write_text("{}")
    shown = edgeort(capsys, "cache", "dir")
    assert shown.rc == 0 and shown.out.splitlines()[0] == str(root_dir)
    assert "tune/" in shown.out and "settings saved by 'edgeort tune'" in shown.out
    cleared = edgeort(capsys, "cache", "clear", "--json")
    removed = sorted(json.loads(cleared.out)["removed"])
    assert cleared.rc == 0 and removed == ["bundles", "plans", "tune"]
    assert not (root_dir / "tune").exists() and not (root_dir / "bundles").exists()
    assert (root_dir / "signing" / "sequences.json").is_file()  # replay protection kept
    assert (root_dir / "someone-else" / "keep.txt").is_file()


def test_profiles_dir_is_where_user_profiles_are_read(tmp_path: Path, capsys: Cap) -> None:
    shown = edgeort(capsys, "profiles", "dir")
    folder = Path(shown.out.strip())
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text(
        '[profile]\nname = "mine"\nextends = "cpu-x86-64"\ndefault = false\n'
    )
    assert "mine" in edgeort(capsys, "profiles", "list").out


def test_package_name_and_version(bundle: Path, tiny: Tiny, tmp_path: Path, capsys: Cap) -> None:
    run = edgeort(capsys, "inspect", bundle)
    assert run.out.splitlines()[0] == f"Bundle       {bundle} (tiny-demo 2.1)"
    bad = edgeort(capsys, "package", tiny.model, "-t", "cpu", "-o", tmp_path / "x",
                  "--name", "../evil")  # fmt: skip
    assert bad.rc == 2 and "--name '../evil'" in bad.err


def test_inspect_text_shows_what_each_variant_needs_installed(bundle: Path, capsys: Cap) -> None:
    run = edgeort(capsys, "inspect", bundle)
    assert (
        "requires  onnxruntime >= " in run.out and "(CPUExecutionProvider is built in)" in run.out
    )
    if HAS_QNN:
        assert "and onnxruntime-qnn for QNNExecutionProvider (pip install onnxruntime-qnn" in (
            run.out
        )


def test_profile_writes_its_trace_to_a_temp_folder_and_says_where(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Cap
) -> None:
    monkeypatch.chdir(tmp_path)
    run = edgeort(capsys, "profile", tiny.model, "--runs", "2", "--warmup", "0")
    assert run.rc == 0, run.err
    assert list(tmp_path.iterdir()) == []  # nothing left in the current directory
    trace = Path(run.out.split("Chrome trace: ")[1].split()[0])
    assert trace.is_file() and trace.parent.name.startswith("edgeort-profile-")
    edgeort(capsys, "profile", tiny.model, "--runs", "2", "--output", tmp_path / "t")
    assert list((tmp_path / "t").glob("*.json"))


def test_tune_says_where_it_saved(tiny: Tiny, capsys: Cap) -> None:
    run = edgeort(capsys, "tune", tiny.model, "--budget", "0.5", "--runs", "3")
    assert run.rc == 0, run.err
    saved = Path(run.out.split("saved: ")[1].split()[0])
    assert saved.is_file() and json.loads(saved.read_text())["latency_ms"] > 0
    nosave = edgeort(capsys, "tune", tiny.model, "--budget", "0.5", "--runs", "3", "--no-save")
    assert "not saved (--no-save)" in nosave.err


def test_shell_completion_is_documented_and_works() -> None:
    env = {**os.environ, "_EDGEORT_COMPLETE": "bash_source"}
    proc = subprocess.run(
        [sys.executable, "-m", "edgeort"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "_edgeort_completion" in proc.stdout, proc.stderr
    for doc in ("README.md", "docs/cli.md"):
        assert "_EDGEORT_COMPLETE=bash_source edgeort" in (REPO / doc).read_text(), doc


def test_readme_and_cli_docs_show_the_new_commands() -> None:
    for doc in ("README.md", "docs/cli.md"):
        text = (REPO / doc).read_text()
        for command in ("edgeort -v", "edgeort cache dir", "edgeort cache clear",
                        "edgeort sign", "edgeort verify", "edgeort keygen"):  # fmt: skip
            assert command in text, (doc, command)


# ---- --json is pure ---------------------------------------------------------------------


def _fresh(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeort", *map(str, args)],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )  # fmt: skip


@needs_qnn
def test_json_is_pure_in_a_fresh_process_with_qnn(bundle: Path, tiny: Tiny, tmp_path: Path) -> None:
    # The commands; the guard is one, in edgeort.cli.main, for every command.
    commands = [
        ("doctor", tiny.model, "--no-run"),
        ("bench", bundle, "--ep", "qnn", "--runs", "2", "--warmup", "0"),
        ("profile", bundle, "--ep", "qnn", "--runs", "2", "--warmup", "0", "--output", tmp_path),
        ("tune", bundle, "--ep", "qnn", "--budget", "0.2", "--runs", "3", "--no-save"),
        ("run", bundle, "--profile", "qnn"),
    ]
    native = 0
    for args in commands:
        proc = _fresh(*args, "--json")
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        json.loads(proc.stdout)  # the whole of stdout is one JSON document
        native += "LIBNATIVE" in proc.stderr
    # The plugin's native print happened, and went to stderr, not into the JSON.
    assert native > 0
