"""Shared pytest fixtures for edgeort's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _isolated_session_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The same for module- and session-scoped fixtures, which run before the per-test
    fixture below: nothing they package or load reads or writes the user's cache (a
    target runtime left there by an earlier run would change what they verify)."""
    base = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEORT_CACHE_DIR", str(base / "cache"))
        mp.setenv("EDGEORT_CONFIG_DIR", str(base / "config"))
        mp.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
        mp.setenv("XDG_CONFIG_HOME", str(base / "xdg-config"))
        mp.delenv("EDGEORT_RUNTIMES_DIR", raising=False)
        yield


@pytest.fixture(autouse=True)
def _isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test's cache/config out of the real user directories."""
    base = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("EDGEORT_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("EDGEORT_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "xdg-config"))
    os.environ.pop("EDGEORT_TRUSTED_KEYS", None)
    # Target runtimes live under the per-test cache unless a test points elsewhere
    # (tests/runtimes_support.py keeps the created ones across runs).
    monkeypatch.delenv("EDGEORT_RUNTIMES_DIR", raising=False)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
