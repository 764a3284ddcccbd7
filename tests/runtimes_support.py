"""Target runtimes for tests: created once (a network install) and reused from a cache
that outlives the test run.

Where: ``$EDGEORT_TEST_RUNTIMES_DIR``, else ``$EDGEORT_RUNTIMES_DIR``, else the user cache
dir's ``runtimes/`` as it is before the test fixtures redirect the cache (read at import
time). A test that needs a runtime skips only when the package index cannot be reached
(:attr:`RuntimeEnvError.network`); a bad pin or a broken install fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeort._dirs import cache_dir
from edgeort.errors import RuntimeEnvError

RUNTIMES_DIR = Path(
    os.environ.get("EDGEORT_TEST_RUNTIMES_DIR")
    or os.environ.get("EDGEORT_RUNTIMES_DIR")
    or cache_dir() / "runtimes"
)


def make_runtime(name: str) -> object:
    """The built-in runtime ``name`` in :data:`RUNTIMES_DIR` (created when missing)."""
    from edgeort.runtimes import add

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEORT_RUNTIMES_DIR", str(RUNTIMES_DIR))
        try:
            return add(name)
        except RuntimeEnvError as exc:
            if exc.network:
                pytest.skip(f"cannot reach a package index to create runtime {name}: {exc}")
            raise


@pytest.fixture
def runtimes_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point edgeort at the shared runtimes dir for one test."""
    monkeypatch.setenv("EDGEORT_RUNTIMES_DIR", str(RUNTIMES_DIR))
    yield RUNTIMES_DIR
