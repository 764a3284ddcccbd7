"""The issue's "tiny" model and data (float ``feats`` + int64 ``ids``, dynamic batch), a
profile whose fp32 recipe the QNN HTP simulator refuses, and CLI helpers for the
first-hour tests (tests/test_first_hour*.py)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgeort.cli import main
from tests.models import make_two_input

# fp32 on the HTP backend of the simulator's default SoC (soc_model 0, not the SM8650
# that qnn-htp's simulator_options pick): the x86-64 simulator cannot finalize the graph
# (QNN_COMMON_ERROR_MEM_ALLOC), so session creation fails although QNN is installed.
# The QNN backend keeps the SoC of the first session in a process, so a refusal is made
# in a fresh process (``fresh_edgeort``) whose first QNN session is this profile's.
QNN_FP32 = """\
[profile]
name = "qnn-fp32"
extends = "qnn-htp"
default = false

[runtime.simulator_options]
soc_model = "0"

[[model.recipes.default]]
precision = "fp32"
"""

HAS_QNN = importlib.util.find_spec("onnxruntime_qnn") is not None
needs_qnn = pytest.mark.skipif(not HAS_QNN, reason="onnxruntime-qnn is not installed")


@dataclass(frozen=True)
class Tiny:
    model: Path
    calibration: Path
    bad_ids: Path  # ids outside the embedding table
    qnn_fp32: Path  # the profile file above
    folder: Path


def make_tiny(folder: Path) -> Tiny:
    folder.mkdir(parents=True, exist_ok=True)
    model = make_two_input(folder)
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((24, 6)).astype(np.float32)
    np.savez(folder / "calib.npz", feats=feats, ids=rng.integers(0, 10, (24, 3)))
    np.savez(folder / "bad.npz", feats=feats, ids=rng.integers(0, 100, (24, 3)))
    profile = folder / "qnn-fp32.toml"
    profile.write_text(QNN_FP32)
    return Tiny(model, folder / "calib.npz", folder / "bad.npz", profile, folder)


@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    err: str


def fresh_edgeort(*args: object) -> Run:
    """``edgeort ARGS`` in a new process (``python -m edgeort``)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "edgeort", *(str(a) for a in args)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr)


def edgeort(capsys: pytest.CaptureFixture[str], *args: object) -> Run:
    """``edgeort ARGS`` through the real entry point (``main``), as a user types it."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return Run(rc, captured.out, captured.err)
