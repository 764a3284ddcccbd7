"""The load-plan cache (edgeort.runtime.plans): a second process loading the same bundle
follows the kept decision without probing or ranking, gets the same model, reasons and
profile, and every part of the key invalidates the plan.

Import-state checks run in fresh interpreters; the rest in this process, each test with
its own cache directory (tests/conftest.py)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import edgeort
from edgeort.runtime import plans
from tests.fresh import last_json
from tests.test_runtime_support import EXAMPLE, variant_spec

CHILD = """
import json, sys
import numpy as np
import edgeort
model = edgeort.load(sys.argv[1])
y = model.run({"image": np.ones((1, 1, 8, 8), np.float32)})["logits"]
print(json.dumps({
    "modules_at_run": sorted(sys.modules),
    "variant": model.variant.name,
    "y": y.tolist(),
    "reasons": model.reasons,
    "profile": model.profile.name if model.profile is not None else None,
}))
"""

# What deciding needs and following a kept plan does not.
DECIDING = (
    "edgeort.profiles",
    "edgeort.profiles.model",
    "edgeort.runtime.ranking",
    "edgeort.runtime.tuning",
    "edgeort.hardware.device",
    "edgeort.hardware._cpu",
    "edgeort.hardware._sources",
)


def _bundle(tmp: Path) -> Path:
    """cpu (runs here) + coreml (skipped here: not in this onnxruntime build)."""
    from edgeort.bundle import write_bundle

    model = onnx.load(EXAMPLE)
    specs = [
        variant_spec(tmp, "cpu", "CPUExecutionProvider", model, profile="cpu-x86-64"),
        variant_spec(
            tmp, "coreml", "CoreMLExecutionProvider", model, profile="coreml", device="npu"
        ),
    ]
    return write_bundle(tmp / "digits.ortpackage", specs, package_name="digits")


def _plan_files() -> list[Path]:
    return sorted((Path(os.environ["EDGEORT_CACHE_DIR"]) / "plans").glob("*.json"))


def _kept_stamp() -> tuple[int, int]:
    """(inode, mtime) of the one kept plan: a load that decided again rewrites it."""
    (path,) = _plan_files()
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def _needs_boot_id() -> None:
    if plans._host() is None:
        pytest.skip(f"no {plans.BOOT_ID} or a battery here: load() always takes the full path")


def test_a_second_process_follows_the_kept_plan_without_deciding(tmp_path: Path) -> None:
    _needs_boot_id()
    bundle = _bundle(tmp_path)
    env = dict(os.environ)
    first = last_json(["-c", CHILD, str(bundle)], env=env)
    assert len(_plan_files()) == 1
    second = last_json(["-c", CHILD, str(bundle)], env=env)
    assert first["variant"] == second["variant"] == "cpu"
    assert first["y"] == second["y"]
    assert first["reasons"] == second["reasons"]
    assert second["reasons"]["coreml"].startswith("CoreMLExecutionProvider")
    assert first["profile"] == second["profile"] == "cpu-x86-64"  # looked up on first use
    assert [m for m in DECIDING if m in first["modules_at_run"]] == list(DECIDING)
    assert [m for m in DECIDING if m in second["modules_at_run"]] == []


def test_the_planned_model_matches_the_decided_one(tmp_path: Path) -> None:
    _needs_boot_id()
    bundle = _bundle(tmp_path)
    decided = edgeort.load(bundle)
    (path,) = _plan_files()
    kept = json.loads(path.read_text())
    assert kept["plan"]["variant"] == "cpu" and kept["plan"]["profile"] == "cpu-x86-64"
    stamp = _kept_stamp()
    planned = edgeort.load(bundle)
    assert _kept_stamp() == stamp  # followed, not decided again
    x = {"image": np.random.default_rng(0).random((1, 1, 8, 8), np.float32)}
    np.testing.assert_array_equal(decided.run(x)["logits"], planned.run(x)["logits"])
    assert planned.reasons == decided.reasons
    assert planned.profile == decided.profile
    a, b = decided.session.get_session_options(), planned.session.get_session_options()
    assert (a.intra_op_num_threads, a.graph_optimization_level) == (
        b.intra_op_num_threads,
        b.graph_optimization_level,
    )


def test_skipped_variants_are_logged_on_the_planned_path_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _needs_boot_id()
    bundle = _bundle(tmp_path)
    lines, stamps = [], []
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="edgeort"):
            edgeort.load(bundle)
        lines.append([r.getMessage() for r in caplog.records if "skipped" in r.getMessage()])
        stamps.append(_kept_stamp())
    assert stamps[0] == stamps[1]  # the second load followed the plan
    assert lines[0] == lines[1] and len(lines[0]) == 1
    assert lines[0][0].startswith("variant coreml skipped: CoreMLExecutionProvider")


def test_every_part_of_the_key_changes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_boot_id()
    opened = edgeort.open_bundle(_bundle(tmp_path))

    def key(**kw: object) -> object:
        return plans.plan_key(opened, **{"strict": False, "threads": None, **kw})  # type: ignore[arg-type]

    base = key()
    assert base is not None and key() == base
    assert key(strict=True) != base
    assert key(threads=1) != base
    monkeypatch.setenv("EDGEORT_SOMETHING", "1")
    assert key() != base
    monkeypatch.delenv("EDGEORT_SOMETHING")
    assert key() == base
    profiles = Path(os.environ["EDGEORT_CONFIG_DIR"]) / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "mine.toml").write_text("# a user profile\n")
    with_profile = key()
    assert with_profile != base
    os.utime(profiles / "mine.toml", ns=(1, 1))  # edited in place
    assert key() != with_profile
    tune = Path(os.environ["EDGEORT_CACHE_DIR"]) / "tune"
    tune.mkdir(parents=True)
    assert key() not in (base, with_profile)
    providers = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: [*providers, "FakeEP"])
    assert "FakeEP" in json.dumps(key())
    monkeypatch.setenv("EDGEORT_NO_PLAN_CACHE", "1")
    assert key() is None
    monkeypatch.delenv("EDGEORT_NO_PLAN_CACHE")
    monkeypatch.setattr(plans, "BOOT_ID", str(tmp_path / "no-boot-id"))
    assert key() is None


def test_no_plan_is_kept_for_explicit_choices_or_without_a_boot_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _bundle(tmp_path)
    edgeort.load(bundle, providers=["CPUExecutionProvider"])
    edgeort.load(bundle, profile="cpu-x86-64")
    monkeypatch.setattr(plans, "BOOT_ID", str(tmp_path / "no-boot-id"))
    edgeort.load(bundle)
    assert _plan_files() == []


def test_a_plan_that_cannot_be_followed_is_decided_again(tmp_path: Path) -> None:
    _needs_boot_id()
    bundle = _bundle(tmp_path)
    edgeort.load(bundle)
    (path,) = _plan_files()
    kept = json.loads(path.read_text())
    kept["plan"]["variant"] = "gone"
    path.write_text(json.dumps(kept))
    assert edgeort.load(bundle).variant.name == "cpu"  # type: ignore[union-attr]
    assert json.loads(path.read_text())["plan"]["variant"] == "cpu"  # replaced
    kept["plan"]["variant"] = "cpu"
    kept["plan"]["session"] = {"graph_optimization_level": "all"}  # keys missing
    path.write_text(json.dumps(kept))
    assert edgeort.load(bundle).variant.name == "cpu"  # type: ignore[union-attr]
    path.write_text("{not json")
    assert edgeort.load(bundle).variant.name == "cpu"  # type: ignore[union-attr]
    assert json.loads(path.read_text())["plan"]["variant"] == "cpu"


def test_a_plan_owned_by_another_user_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _needs_boot_id()
    opened = edgeort.open_bundle(_bundle(tmp_path))
    edgeort.load(opened)
    key = plans.plan_key(opened, strict=False, threads=None)
    assert key is not None
    path = plans.plan_path(opened, strict=False, threads=None)
    assert plans.read_plan(path, key) is not None
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    with caplog.at_level(logging.WARNING, logger="edgeort"):
        assert plans.read_plan(path, key) is None
    assert "owned by another user" in caplog.text


def test_no_plan_is_kept_when_a_better_variant_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A variant that failed to open (a GPU out of memory, a device busy, a library path
    not set) may open next time: the full path tries it again, so no plan may skip it."""
    _needs_boot_id()
    from edgeort.bundle import write_bundle
    from tests.test_runtime_support import chain_model

    specs = [
        variant_spec(
            tmp_path, "broken", "CPUExecutionProvider", chain_model(("Relu", "NoSuchOp")),
            profile="cpu-x86-64",
        ),
        variant_spec(
            tmp_path, "cpu", "CPUExecutionProvider", chain_model(("Relu", "Neg")),
            profile="cpu-x86-64",
        ),
    ]  # fmt: skip
    bundle = write_bundle(tmp_path / "b", specs, package_name="b")
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="edgeort"):
            model = edgeort.load(bundle)
        assert model.variant.name == "cpu"  # type: ignore[union-attr]
        assert model.reasons["broken"].startswith("failed:")
        assert "variant broken failed" in caplog.text  # tried again, as the full path does
    assert _plan_files() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session", []),
        ("session", {"config": []}),
        ("config", ["not", "a", "table"]),
        ("provider_options", {"k": 1}),
        ("intra_op_threads", "2"),
        ("reasons", ["cpu"]),
        ("log", [1]),
        ("profile", 3),
    ],
)
def test_a_malformed_plan_under_a_matching_key_is_decided_again(
    tmp_path: Path, field: str, value: object
) -> None:
    """Only the shape load() writes is followed; anything else (a plan edited by hand, one
    a later version wrote under the same key) means the full path, never a crash."""
    _needs_boot_id()
    opened = edgeort.open_bundle(_bundle(tmp_path))
    edgeort.load(opened)
    (path,) = _plan_files()
    kept = json.loads(path.read_text())
    where = kept["plan"] if field in kept["plan"] else kept["plan"]["session"]
    where[field] = value
    path.write_text(json.dumps(kept))
    key = plans.plan_key(opened, strict=False, threads=None)
    assert key is not None
    assert plans.read_plan(path, key) is None
    assert edgeort.load(opened).variant.name == "cpu"  # type: ignore[union-attr]


def test_registering_a_plugin_ep_in_this_process_keeps_the_key(tmp_path: Path) -> None:
    """onnxruntime lists a plugin EP once edgeort registered it: that is this process's
    state, not the install's. Were it in the key, a process that loads a bundle twice (or
    probes first) would never find the plan another process kept, and replace it."""
    _needs_boot_id()
    from edgeort.hardware import plugins

    if not plugins.plugin_installed("QNNExecutionProvider"):
        pytest.skip("onnxruntime-qnn is not installed")
    opened = edgeort.open_bundle(_bundle(tmp_path))
    before = plans.plan_key(opened, strict=False, threads=None)
    assert plugins.ensure_registered("QNNExecutionProvider")
    assert "QNNExecutionProvider" in ort.get_available_providers()
    after = plans.plan_key(opened, strict=False, threads=None)
    assert after is not None and "QNNExecutionProvider" not in after["providers"]
    assert after == before


@pytest.mark.parametrize("strict", [None, 0, "yes"])
def test_a_strict_that_is_not_a_bool_loads_as_before(tmp_path: Path, strict: object) -> None:
    """load() takes strict for its truth value (None from a config lookup is 'not
    strict'); the plan file name must not turn that into a TypeError or ValueError."""
    bundle = _bundle(tmp_path)
    for _ in range(2):
        model = edgeort.load(bundle, strict=strict)  # type: ignore[arg-type]
        assert model.variant.name == "cpu"  # type: ignore[union-attr]
