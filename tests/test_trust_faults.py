"""Fault injection: every file-system call of bundle writing and cache installation fails.

A clean run of the operation counts its file-system calls (N). Then for every k in 1..N
the k-th call raises a real ``OSError`` (:class:`tests.test_trust_support.FaultFS`):
ENOSPC that stays (every later call fails too, as on a full disk), and ENOSPC, EIO and
EACCES once. In CI each k gets one of these four in turn; ``EDGEORT_SOAK=1`` runs all
four for every k. After each fault:

- the operation raised the promised error -- ``write_bundle``/``package``: PackageError,
  extraction into the cache: CacheError (BundleError/IntegrityError where a *read* of the
  bundle failed) -- naming the errno's text; or it succeeded;
- the target is the old complete bundle or the new complete one, byte for byte (or
  absent when there was none before), and ``open_bundle`` verifies it;
- nothing but ``.edgeort-tmp-*`` leftovers appeared beside it; readers ignore them and the
  next writer removes them;
- ``verified.json`` and the tune cache are absent, old or new JSON, never partial.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edgeort._dirs import cache_dir
from edgeort.bundle import _place, open_bundle, write_bundle
from edgeort.bundle._place import clean_leftovers
from edgeort.errors import BundleError, CacheError, EdgeortError, PackageError
from tests.test_bundle_support import tree
from tests.test_trust_support import (
    ERRNOS,
    SOAK,
    FaultFS,
    add_spec,
    age_leftovers,
    count_calls,
    leftovers,
    record,
    source_dir,
    write_version,
)

_ROTATION = (("ENOSPC", True), ("ENOSPC", False), ("EIO", False), ("EACCES", False))


Kinds = tuple[tuple[str, bool], ...]


def plan(n: int, kinds: Kinds = _ROTATION, every: Kinds = ()) -> list[tuple[str, int, bool]]:
    """Every call k = 1..n fails; CI rotates the fault kind per k, the soak runs every
    kind at every k. Kinds in ``every`` run at every k in CI too."""
    if SOAK:
        kinds, every = (), (*kinds, *every)
    out = [
        (kinds[k % len(kinds)][0], k, kinds[k % len(kinds)][1]) for k in range(1, n + 1) if kinds
    ]
    return out + [(name, k, sticky) for name, sticky in every for k in range(1, n + 1)]


def snapshot(path: Path) -> dict[str, bytes] | bytes | None:
    if not os.path.lexists(path):
        return None
    return path.read_bytes() if path.is_file() else tree(path)


@dataclass
class Campaign:
    """Outcomes of one fault campaign: counts and every broken promise."""

    name: str
    trials: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    escapes: int = 0  # exceptions that are not EdgeortError

    def check(self, ok: bool, what: str) -> None:
        if not ok and len(self.problems) < 20:
            self.problems.append(what)

    def assert_clean(self) -> None:
        record(
            "faults", campaign=self.name, trials=self.trials, outcomes=dict(self.outcomes),
            problems=len(self.problems), escapes=self.escapes,
        )  # fmt: skip
        assert self.trials > 0
        assert not self.problems, f"{self.name}: {len(self.problems)} problem(s):\n" + "\n".join(
            self.problems
        )


def run_faulted(op: Callable[[], Any], name: str, k: int, sticky: bool) -> tuple[Any, FaultFS]:
    fs = FaultFS(fail_at=k, err=ERRNOS[name], sticky=sticky)
    try:
        with fs.armed():
            op()
    except Exception as exc:  # judged by the caller: every escape is a finding
        return exc, fs
    return None, fs


def _error_ok(exc: BaseException, name: str, expected: tuple[type, ...]) -> bool:
    return isinstance(exc, expected) and os.strerror(ERRNOS[name]) in str(exc)


def _judge(
    camp: Campaign, exc: BaseException, name: str, expected: tuple[type, ...], where: str
) -> None:
    """The promised error class, naming the errno's text; anything else is a problem,
    and an exception outside the EdgeortError tree also counts as an escape."""
    if not isinstance(exc, EdgeortError):
        camp.escapes += 1
    camp.check(_error_ok(exc, name, expected), f"{where}: raised {exc!r}")


# --------------------------------------------------------------------------- writing


def _write_campaign(
    tmp: Path, *, zip: bool, old: bool, exchange: bool = True, every: Kinds = ()
) -> Campaign:
    """write_bundle of version 2 over version 1 (or onto nothing), failing every call."""
    refs: dict[str, Any] = {}
    for v in "12":
        ref = write_version(tmp / "refs", tmp / "refs" / f"v{v}", v, zip=zip)
        assert open_bundle(ref).package_version == v  # the references verify
        refs[v] = snapshot(ref)
    work = tmp / "work"
    work.mkdir()
    out = work / ("b.zip" if zip else "b")
    src2 = source_dir(work, "2", external=True)
    source_dir(work, "1")
    expected_entries = {out.name, src2.name, "src-1"}

    def reset() -> None:
        if old:
            write_version(work, out, "1", zip=zip)
        elif os.path.lexists(out):
            shutil.rmtree(out) if out.is_dir() else out.unlink()

    def op() -> Any:
        spec = add_spec(src2)
        return write_bundle(out, [spec], package_name="demo", package_version="2", zip=zip)

    reset()
    n = count_calls(op).n
    reset()
    camp = Campaign(f"write_bundle(zip={zip}, old={old}, renameat2={exchange})")
    for name, k, sticky in plan(n, every=every):
        exc, fs = run_faulted(op, name, k, sticky)
        failed = fs.failed[0] if fs.failed else "nothing"
        where = f"{name} at call {k}{' (sticky)' if sticky else ''} in {failed}"
        state = snapshot(out)
        if old and state is None and not exchange:  # both renames of the portable path failed
            camp.outcomes["restored by the next writer"] += 1
            age_leftovers(work)
            clean_leftovers(work)  # what the next writer runs first
            state = snapshot(out)
        is_new = state == refs["2"]
        is_old = state == refs["1"] if old else state is None
        camp.trials += 1
        camp.outcomes[f"{type(exc).__name__ if exc else 'ok'}/{'new' if is_new else 'old'}"] += 1
        if exc is None:
            camp.check(is_new, f"{where}: succeeded but the target is not the new bundle")
        else:
            _judge(camp, exc, name, (PackageError,), where)
            camp.check(is_old or is_new, f"{where}: target is neither old nor new: {exc}")
        if not zip and state is not None and (is_old or is_new):
            bundle = open_bundle(out)  # verifies every byte
            camp.check(bundle.package_version == ("2" if is_new else "1"), f"{where}: version")
        extra = {p.name for p in work.iterdir()} - expected_entries - set(leftovers(work))
        camp.check(not extra, f"{where}: wrote outside the target: {sorted(extra)}")
        if leftovers(work):
            camp.outcomes["leftovers"] += 1
            age_leftovers(work)
            write_version(work, out, "1", zip=zip)  # the next writer removes them
            camp.check(not leftovers(work), f"{where}: next writer left {leftovers(work)}")
            reset()
        elif is_new:
            reset()
    return camp


@pytest.mark.parametrize("zip", [False, True], ids=["dir", "zip"])
def test_write_bundle_over_old_bundle_survives_every_fault(tmp_path: Path, zip: bool) -> None:
    camp = _write_campaign(tmp_path, zip=zip, old=True)
    camp.assert_clean()
    assert camp.outcomes["PackageError/old"] > camp.trials // 3  # most faults are fatal


def test_write_bundle_onto_nothing_survives_every_fault(tmp_path: Path) -> None:
    camp = _write_campaign(tmp_path, zip=False, old=False)
    camp.assert_clean()
    assert camp.outcomes["PackageError/old"] > 0  # "old" = still nothing there


def test_write_bundle_without_renameat2_survives_every_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portable path (no RENAME_EXCHANGE: macOS, Windows, some file systems): the old
    bundle is renamed aside, the new one in, and on failure the old one back. When that
    rename back fails too (a lasting fault), the target is missing and the old bundle
    waits in ``.edgeort-tmp-old-*``: the next writer's ``clean_leftovers`` restores it."""
    monkeypatch.setattr(_place, "_exchange", lambda a, b: False)
    lasting = (("EIO", True),)  # at every k: also right at the rename that brings it back
    camp = _write_campaign(tmp_path, zip=False, old=True, exchange=False, every=lasting)
    camp.assert_clean()
    assert camp.outcomes["restored by the next writer"] > 0


# --------------------------------------------------------------------------- cache


def _cache_state(good: dict[str, bytes], tampered: dict[str, bytes] | None) -> str:
    """'none', 'good', 'tampered' (the old copy, untouched) or a problem: the zip's
    extraction in the cache."""
    root = cache_dir() / "bundles"
    if not root.is_dir():
        return "none"
    entries = [p for p in root.iterdir() if not p.name.startswith(".edgeort-tmp-")]
    if not entries:
        return "none"
    if len(entries) != 1:
        return f"{len(entries)} entries in {root}"
    got = tree(entries[0])
    if got == good:
        return "good"
    return "tampered" if got == tampered else f"{entries[0].name} is a partial or mixed copy"


def _verified_json_ok() -> bool:
    path = cache_dir() / "verified.json"
    if not path.exists():
        return True
    try:
        return isinstance(json.loads(path.read_bytes()), dict)
    except ValueError:
        return False


def _extract_campaign(tmp: Path, *, before: str) -> Campaign:
    """open_bundle(zip) with the cache empty ('none'), or holding a tampered extraction
    ('tampered': verification fails, so it is extracted again over the old copy)."""
    zip_path = write_version(tmp, tmp / "b.zip", "2", zip=True)
    other = write_version(tmp, tmp / "other.zip", "1", zip=True)
    root = open_bundle(zip_path).root
    good = tree(root)
    tampered: dict[str, bytes] | None = None

    def reset() -> None:
        nonlocal tampered
        if before == "none":
            shutil.rmtree(cache_dir(), ignore_errors=True)
            return
        if not root.is_dir() or tree(root) != good:
            shutil.rmtree(cache_dir(), ignore_errors=True)
            open_bundle(zip_path)
        model = root / "model" / "cpu-fp32" / "model.onnx"
        model.write_bytes(model.read_bytes()[:-1] + b"\x00")  # in place: same inode
        tampered = tree(root)

    def op() -> Any:
        return open_bundle(zip_path)

    reset()
    n = count_calls(op).n
    reset()
    camp = Campaign(f"cache install (before: {before})")
    allowed = ("none", "good") if before == "none" else ("good", "tampered")
    bundles = cache_dir() / "bundles"
    for name, k, sticky in plan(n):
        exc, fs = run_faulted(op, name, k, sticky)
        failed = fs.failed[0] if fs.failed else "nothing"
        where = f"{name} at call {k}{' (sticky)' if sticky else ''} in {failed}"
        camp.trials += 1
        camp.outcomes[type(exc).__name__ if exc else "ok"] += 1
        if exc is not None:
            expected = (CacheError,) if fs.first_writes else (CacheError, BundleError)
            _judge(camp, exc, name, expected, where)
        state = _cache_state(good, tampered)
        camp.check(state in allowed, f"{where}: cache holds {state}")
        camp.check(_verified_json_ok(), f"{where}: verified.json is partial")
        if leftovers(bundles):
            camp.outcomes["leftovers"] += 1
            age_leftovers(bundles)
        try:
            healed = open_bundle(zip_path)  # the next open, unfaulted, always works
            camp.check(tree(healed.root) == good, f"{where}: next open gave other bytes")
        except EdgeortError as err:
            camp.check(False, f"{where}: next open failed: {err}")
        if leftovers(bundles):  # an intact copy is reused as is; the next extraction cleans
            shutil.rmtree(open_bundle(other).root)
            camp.check(
                not leftovers(bundles), f"{where}: next extraction left {leftovers(bundles)}"
            )
        reset()
    return camp


@pytest.mark.parametrize("before", ["none", "tampered"])
def test_cache_install_survives_every_fault(tmp_path: Path, before: str) -> None:
    camp = _extract_campaign(tmp_path, before=before)
    camp.assert_clean()
    assert camp.outcomes["CacheError"] > 0


def test_tune_cache_write_survives_every_fault(tmp_path: Path) -> None:
    """save_tuning: CacheError naming the errno; the entry is old, new or absent."""
    from edgeort.hardware import probe
    from edgeort.measure.targets import Target
    from edgeort.measure.tune import ModelFileVariant, TuneResult, save_tuning
    from edgeort.runtime.tuning import read_tuning
    from tests.test_trust_support import add_model

    device = probe(register_plugins=False)
    model = add_model(tmp_path / "add.onnx")
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    target = Target("add.onnx", model, sha256=sha)  # (else save_tuning reads the model too)
    variant = ModelFileVariant(target)

    def result(ms: float) -> TuneResult:
        best = {"threads": 1, "graph_opt": "all", "execution_mode": "sequential", "spinning": False}
        return TuneResult("add.onnx", target.ep, best, ms, 2 * ms, 3, 8, "test", 1.0, 0.1, False)

    path = save_tuning(result(1.0), target, device)
    n = count_calls(lambda: save_tuning(result(0.5), target, device)).n
    camp = Campaign("tune cache")
    for name, k, sticky in plan(n):
        exc, fs = run_faulted(lambda: save_tuning(result(0.5), target, device), name, k, sticky)
        camp.trials += 1
        camp.outcomes[type(exc).__name__ if exc else "ok"] += 1
        where = f"{name} at call {k} in {fs.failed[0] if fs.failed else 'nothing'}"
        if exc is not None:
            _judge(camp, exc, name, (CacheError,), where)
        entry = read_tuning(variant, device)
        got = entry["latency_ms"] if entry else None
        camp.check(got in (1.0, 0.5), f"{where}: tune entry now {got}")
        camp.check(not leftovers(path.parent), f"{where}: left {leftovers(path.parent)}")
        save_tuning(result(1.0), target, device)
    camp.assert_clean()


# --------------------------------------------------------------------------- packaging


def test_package_write_step_survives_every_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """edgeort.package with the real pipeline: faults in its write step (staging the
    variant files, then write_bundle) over a bundle an earlier package() wrote."""
    from edgeort.pack import package
    from edgeort.pack import write as pack_write
    from tests.models import make_mlp

    out = tmp_path / "out" / "mlp.bundle"
    first = make_mlp(tmp_path / "a", seed=0)
    second = make_mlp(tmp_path / "b", seed=1)
    package(first, ["cpu"], output=out, measure_speed=False)
    old = tree(out)
    real_write = pack_write.write
    camp = Campaign("package() write step")

    def faulted_write(*args: Any, **kwargs: Any) -> Any:
        op = lambda: real_write(*args, **kwargs)  # noqa: E731
        n = count_calls(op).n  # writes the new bundle once ...
        new = tree(out)
        for name, k, sticky in plan(n):
            _restore(out, old)
            exc, fs = run_faulted(op, name, k, sticky)
            where = f"{name} at call {k} in {fs.failed[0] if fs.failed else 'nothing'}"
            camp.trials += 1
            camp.outcomes[type(exc).__name__ if exc else "ok"] += 1
            if exc is not None:
                _judge(camp, exc, name, (PackageError,), where)
            state = tree(out) if out.is_dir() else None
            camp.check(state in (old, new), f"{where}: target is neither old nor new")
            if leftovers(out.parent):
                age_leftovers(out.parent)
        _restore(out, old)
        return real_write(*args, **kwargs)  # ... and the real, unfaulted write last

    monkeypatch.setattr(pack_write, "write", faulted_write)
    result = package(second, ["cpu"], output=out, measure_speed=False)
    assert open_bundle(result.path).metadata["source_model"]["name"] == "mlp.onnx"
    assert not leftovers(out.parent)  # the last, real write removed the aged leftovers
    camp.assert_clean()
    assert camp.outcomes["PackageError"] > camp.trials // 3


def _restore(out: Path, files: dict[str, bytes]) -> None:
    if out.exists() and tree(out) == files:
        return
    shutil.rmtree(out, ignore_errors=True)
    for rel, data in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)


# --------------------------------------------------------------------------- unusable cache


def test_cache_dir_under_a_file_is_a_clear_cache_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = write_version(tmp_path, tmp_path / "b.zip", "1", zip=True)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the cache's parent should be")
    monkeypatch.setenv("EDGEORT_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(CacheError) as info:
        open_bundle(zip_path)
    assert str(blocker / "cache" / "bundles") in str(info.value)
    assert os.strerror(errno.ENOTDIR) in str(info.value)
    # a bundle *directory* needs no cache: it still opens (verification cache off)
    assert open_bundle(write_version(tmp_path, tmp_path / "d", "1")).package_version == "1"
