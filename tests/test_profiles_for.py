"""profiles_for(): the profiles edgeort.load() ranks with, read one file per name, and a
user profile directory that cannot be read (skipped with a warning when loading a
bundle; a ProfileError for ``edgeort profiles list``)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import edgeort
from edgeort.errors import ProfileError
from edgeort.profiles import (
    builtin_dir,
    builtin_profiles,
    load_profiles,
    profiles_for,
    user_profile_dir,
)
from edgeort.profiles import loader as _profile_load
from tests.fresh import NOBODY, last_json, shared_tmp_dir
from tests.test_trust_support import write_version


def _fresh_named() -> None:
    _profile_load._NAMED.clear()


def test_every_builtin_file_is_named_after_its_profile() -> None:
    """The one-file-per-name rule the subset reader relies on."""
    for profile in builtin_profiles():
        assert profile.source is not None and profile.source.stem == profile.name


def test_subset_equals_the_full_set_for_every_name() -> None:
    _fresh_named()
    full = {p.name: p for p in builtin_profiles()}
    for name, profile in full.items():
        _fresh_named()
        assert _profile_load.builtin_subset(builtin_dir(), [name]) == [profile], name
    _fresh_named()
    names = ["cpu-x86-64-vnni", "qnn-htp", "no-such-profile", "cpu-x86-64-vnni"]
    got = _profile_load.builtin_subset(builtin_dir(), names)
    assert got == [full["cpu-x86-64-vnni"], full["qnn-htp"]]  # unknown left out, once each


def test_extends_parent_is_read_for_a_child(tmp_path: Path) -> None:
    """A copy of the built-in folder with only the vnni child and its parent."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    for name in ("cpu-x86-64", "cpu-x86-64-vnni"):
        shutil.copy(builtin_dir() / f"{name}.toml", folder)
    _fresh_named()
    [child] = _profile_load.builtin_subset(folder, ["cpu-x86-64-vnni"])
    full = {p.name: p for p in builtin_profiles()}["cpu-x86-64-vnni"]
    assert child.extends == "cpu-x86-64"
    assert child.model == full.model and child.session == full.session
    (folder / "cpu-x86-64.toml").unlink()  # the parent gone: the same error a full load gives
    _fresh_named()
    with pytest.raises(ProfileError) as info:
        _profile_load.builtin_subset(folder, ["cpu-x86-64-vnni"])
    assert "unknown profile 'cpu-x86-64'" in str(info.value)


def test_names_that_are_not_profile_names_read_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    shutil.copy(builtin_dir() / "coreml.toml", folder)
    (tmp_path / "outside.toml").write_text("not toml [")
    _fresh_named()
    bad = ["../outside", "/etc/passwd", "CoreML", "", ".coreml"]
    assert _profile_load.builtin_subset(folder, bad) == []


def test_a_file_holding_another_name_falls_back_to_the_full_set(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "coreml.toml").write_text(
        (builtin_dir() / "coreml.toml").read_text().replace('name = "coreml"', 'name = "other"')
    )
    _fresh_named()
    assert _profile_load.builtin_subset(folder, ["coreml"]) is None


def test_user_profiles_are_part_of_the_set() -> None:
    folder = user_profile_dir()
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text(
        '[profile]\nname = "cpu-x86-64"\nextends = "cpu-x86-64"\n'
        'description = "mine"\nversion = "9"\n'
    )
    [mine] = [p for p in profiles_for(["cpu-x86-64"]) if p.name == "cpu-x86-64"]
    assert mine.version == "9" and not mine.builtin


def test_a_user_profile_dir_that_is_a_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Listing fails (ENOTDIR even for root): load() warns and goes on, the profile
    commands report it as a ProfileError (exit code 3) naming the directory."""
    from edgeort.cli import cli

    user_profile_dir().parent.mkdir(parents=True)
    user_profile_dir().write_text("not a directory")
    bundle = write_version(tmp_path, tmp_path / "b", "1")
    with caplog.at_level(logging.WARNING, logger="edgeort"):
        model = edgeort.load(bundle)
    assert model.run({"x": np.ones((1, 4), np.float32)})["y"].shape == (1, 4)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(user_profile_dir()) in warning and "user profiles skipped" in warning
    with pytest.raises(ProfileError) as info:
        load_profiles()
    [problem] = info.value.problems
    assert problem.path == str(user_profile_dir())
    assert "cannot read the user profile directory" in problem.message
    result = CliRunner().invoke(cli, ["profiles", "list"])
    assert result.exit_code == 3 and str(user_profile_dir()) in result.output


_CHILD = r"""
import json, logging, os, sys
import numpy as np
import edgeort
from edgeort.errors import ProfileError
from edgeort.profiles import load_profiles

warnings = []
logging.getLogger("edgeort").addHandler(type("H", (logging.Handler,), {
    "emit": lambda self, record: warnings.append(record.getMessage())})())
logging.getLogger("edgeort").setLevel(logging.WARNING)
bundle, cache, warm = sys.argv[2:5]
os.environ["EDGEORT_CACHE_DIR"] = warm
edgeort.load(bundle).run({"x": np.ones((1, 4), np.float32)})  # imports every lazy module
try:
    load_profiles()
except ProfileError:
    pass
warnings.clear()
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(int(sys.argv[1]))
    os.setuid(int(sys.argv[1]))
os.environ["EDGEORT_CACHE_DIR"] = cache
out = {"uid": os.geteuid()}
y = edgeort.load(bundle).run({"x": np.ones((1, 4), np.float32)})["y"]
out["y"] = y.tolist()
out["warnings"] = warnings
try:
    load_profiles()
    out["list"] = "ok"
except ProfileError as exc:
    out["list"] = [[p.path, p.message] for p in exc.problems]
print(json.dumps(out))
"""


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    with shared_tmp_dir("edgeort-profiles-for-") as path:
        yield path


def test_unreadable_user_profile_dir_never_stops_a_bundle_loading(shared_tmp: Path) -> None:
    """``stat`` of the profile dir is refused (EACCES): as uid 65534 when run as root."""
    bundle = write_version(shared_tmp, shared_tmp / "b", "1")
    for path in [shared_tmp, *shared_tmp.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    config = shared_tmp / "config"
    (config / "profiles").mkdir(parents=True)
    config.chmod(0o700)  # root's: nobody cannot look inside
    if os.geteuid() != 0:
        config.chmod(0o000)
    env = {**os.environ, "EDGEORT_CONFIG_DIR": str(config)}
    cache = shared_tmp / "cache"
    cache.mkdir()
    if os.geteuid() == 0:
        os.chown(cache, NOBODY, NOBODY)  # the verification cache is the child's own
    cmd = ["-c", _CHILD, str(NOBODY), str(bundle), str(cache)]
    cmd.append(str(shared_tmp / "warm-cache"))
    try:
        out = last_json(cmd, env=env, cwd=None)
    finally:
        config.chmod(0o700)
    assert out["uid"] != 0
    assert out["y"] == (np.ones((1, 4), np.float32) + np.arange(4) + 1.0).tolist()
    where = str(config / "profiles")
    [warning] = out["warnings"]
    assert where in warning and "Permission denied" in warning
    [[path, message]] = out["list"]
    assert path == where and "cannot read the user profile directory" in message
