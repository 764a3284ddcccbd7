"""SIGKILL ``edgeort package`` at random moments while it replaces a bundle.

Each trial runs ``python -m edgeort package <model> -t cpu -o <out> --json --no-speed``
in a subprocess, over a bundle an earlier run wrote from the *other* model (two MLPs
that differ only in their weights, same file name). A seeded RNG picks the moment: any
time after start; 0-30 ms after the ``write`` step's start event; or 0-5 ms after the
staging directory ``.edgeort-tmp-*`` appears beside the target (the write itself takes
a few milliseconds, so uniform moments alone would rarely land in it). Afterwards the
target must open and verify with ``open_bundle`` and be exactly the old package or
exactly the new one (its recorded source-model digest, variant names and every file
digest), never a mix; a run that finished must have left the new one.
``.edgeort-tmp-*`` leftovers beside the target must not disturb readers, and the next
writer removes them (once stale). That includes the packager's own work directories
(``.edgeort-tmp-pack-*``, beside the target): killed runs leave them, they are counted,
and none may survive the next run; none may appear in ``$TMPDIR``.

CI runs a handful of trials; ``EDGEORT_SOAK=1`` runs 200 (``benchmarks/soak.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgeort.bundle import open_bundle
from edgeort.errors import EdgeortError
from edgeort.pack.pipeline import WORK_PREFIX
from tests.models import make_mlp
from tests.test_trust_support import age_leftovers, leftovers, record, size

SEED = 20240611


@dataclass
class KillStats:
    trials: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)
    corruptions: list[str] = field(default_factory=list)
    leftover_trials: int = 0
    pack_tmp_left: int = 0  # work dirs of killed runs beside the target, before the next run
    tmpdir_left: list[str] = field(default_factory=list)  # what runs left in $TMPDIR


class _Reader(threading.Thread):
    """Reads the --json event lines; ``writing`` is set at the write step's start."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.step = "start"
        self.writing = threading.Event()

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "event" not in obj:  # the closing {"result": ...} or {"error": ...} line
                self.step = f"{next(iter(obj), '?')}:end"
                continue
            event = obj["event"]
            self.step = f"{event.get('step', '?')}:{event.get('kind', '?')}"
            if event.get("step") == "write" and event.get("kind") == "start":
                self.writing.set()


def _identity(out: Path) -> tuple[str, tuple[str, ...]]:
    """(source model sha256, variant names) of the bundle at ``out``; verifies it."""
    bundle = open_bundle(out)
    return bundle.metadata["source_model"]["sha256"], tuple(v.name for v in bundle.variants)


MODES = ("any", "write", "staging")


def _staged(directory: Path) -> set[str]:
    """The ``.edgeort-tmp-*`` entries beside the target, less the packagers' work dirs."""
    return {n for n in leftovers(directory) if not n.startswith(WORK_PREFIX)}


def _trial(
    out: Path, model: Path, mode: str, rng: random.Random, env: dict[str, str]
) -> tuple[int, str]:
    before = _staged(out.parent)
    cmd = [sys.executable, "-m", "edgeort", "package", str(model), "-t", "cpu"]
    cmd += ["-o", str(out), "--json", "--no-speed"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    reader = _Reader(proc)
    reader.start()
    if mode == "any":  # any moment of the run
        deadline = time.monotonic() + rng.uniform(0.05, 3.0)
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
    else:  # into the write step: some ms after it starts, or once the staging dir exists
        while proc.poll() is None and not reader.writing.wait(0.01):
            pass
        while mode == "staging" and proc.poll() is None and _staged(out.parent) <= before:
            pass
        time.sleep(rng.uniform(0.0, 0.03 if mode == "write" else 0.005))
    phase = f"{mode}/{reader.step}"
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    rc = proc.wait(timeout=120)
    reader.join(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()
    return rc, phase


def run_kill_trials(tmp: Path, trials: int, seed: int = SEED) -> KillStats:
    from edgeort.pack import package

    models = [make_mlp(tmp / name, seed=i) for i, name in enumerate("ab")]
    digests = {hashlib.sha256(m.read_bytes()).hexdigest(): m for m in models}
    out = tmp / "out" / "mlp.bundle"
    package(models[0], ["cpu"], output=out, measure_speed=False)
    scratch = tmp / "scratch"  # the packager's TMPDIR: its work dirs, to count
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    names = _identity(out)[1]
    stats = KillStats()
    rng = random.Random(seed)
    for i in range(trials):
        old_sha = _identity(out)[0]
        new = next(m for sha, m in digests.items() if sha != old_sha)
        before = _staged(out.parent)
        rc, phase = _trial(out, new, MODES[i % len(MODES)], rng, env)
        stats.trials += 1
        stats.phases[phase.split(":")[0]] += 1
        stats.leftover_trials += bool(_staged(out.parent) - before)  # killed mid-write
        try:
            sha, got_names = _identity(out)
        except EdgeortError as exc:
            stats.corruptions.append(f"trial {i} (rc {rc}, {phase}): {exc}")
            break
        which = "new" if digests.get(sha) == new else "old" if sha == old_sha else "other"
        stats.outcomes[f"{'killed' if rc == -signal.SIGKILL else f'rc={rc}'}/{which}"] += 1
        if which == "other" or got_names != names or (rc == 0 and which != "new"):
            stats.corruptions.append(f"trial {i} (rc {rc}, {phase}): {which} {got_names}")
    stats.pack_tmp_left = sum(1 for n in leftovers(out.parent) if n.startswith(WORK_PREFIX))
    stats.tmpdir_left = sorted(p.name for p in scratch.iterdir())
    age_leftovers(out.parent)
    package(models[0], ["cpu"], output=out, measure_speed=False)  # the next writer
    assert not leftovers(out.parent), leftovers(out.parent)  # work dirs of killed runs too
    return stats


def test_sigkill_during_package_leaves_old_or_new_bundle(tmp_path: Path) -> None:
    stats = run_kill_trials(tmp_path, size(6, 200))
    record(
        "kill", trials=stats.trials, outcomes=dict(stats.outcomes), phases=dict(stats.phases),
        corruptions=len(stats.corruptions), leftover_trials=stats.leftover_trials,
        pack_tmp_left=stats.pack_tmp_left, tmpdir_left=len(stats.tmpdir_left),
    )  # fmt: skip
    assert not stats.corruptions, stats.corruptions
    assert not [n for n in stats.tmpdir_left if n.startswith("edgeort-")], stats.tmpdir_left
    assert stats.trials == size(6, 200)
    assert sum(n for k, n in stats.outcomes.items() if k.startswith("killed")) > 0
