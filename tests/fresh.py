"""Running Python in a fresh interpreter, for tests whose result must not depend on what
this one has imported, registered or cached (and for children that drop to uid 65534)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import REPO

NOBODY = 65534  # the uid/gid a root test run drops to, so mode bits are enforced


def run_python(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = REPO
) -> subprocess.CompletedProcess[str]:
    """``python <args>`` in a fresh interpreter; asserts it exited 0 (stderr shown if not)."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def last_json(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = REPO
) -> Any:
    """:func:`run_python`, then the JSON on the last line of its stdout."""
    return json.loads(run_python(args, env=env, cwd=cwd).stdout.strip().splitlines()[-1])


@contextmanager
def shared_tmp_dir(prefix: str) -> Iterator[Path]:
    """A temp dir uid 65534 can read (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
