"""edgeort's cache and config directories are platformdirs' answer, whether _dirs works
the plain-Linux XDG rule out itself (so a cold load need not import platformdirs) or
asks platformdirs."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest

from edgeort import _dirs

CASES = [
    {},  # HOME only
    {"HOME": "/home/someone/"},  # a trailing slash
    {"XDG_CACHE_HOME": "/x/cache", "XDG_CONFIG_HOME": "/x/config"},
    {"XDG_CACHE_HOME": "/x/cache/", "XDG_CONFIG_HOME": "/x/config/"},
    {"XDG_CACHE_HOME": "", "XDG_CONFIG_HOME": "   "},  # blank: the default
    {"XDG_CACHE_HOME": "rel/cache", "XDG_CONFIG_HOME": "rel/config"},  # relative
    {"HOME": "relative/home"},
    {"HOME": ""},
    {"ANDROID_DATA": "/data", "ANDROID_ROOT": "/system"},
]


@pytest.mark.parametrize("env", CASES, ids=[str(c) for c in CASES])
def test_cache_and_config_dirs_are_what_platformdirs_says(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("EDGEORT_CACHE_DIR", "EDGEORT_CONFIG_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        cache, config = (
            platformdirs.user_cache_dir("edgeort"),
            platformdirs.user_config_dir("edgeort"),
        )
    except RuntimeError:  # no usable home for platformdirs either
        return
    assert _dirs.cache_dir() == Path(cache)
    assert _dirs.config_dir() == Path(config)


def test_only_plain_linux_is_worked_out_without_platformdirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("ANDROID_DATA", raising=False)
    monkeypatch.delenv("ANDROID_ROOT", raising=False)
    here = _dirs._plain_linux("XDG_CONFIG_HOME", ".config")
    assert here == ("/home/u/.config/edgeort" if sys.platform == "linux" else None)
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative")
    assert _dirs._plain_linux("XDG_CONFIG_HOME", ".config") is None
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("ANDROID_DATA", "/data")
    assert _dirs._plain_linux("XDG_CONFIG_HOME", ".config") is None
    monkeypatch.delenv("ANDROID_DATA")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _dirs._plain_linux("XDG_CONFIG_HOME", ".config") is None
