"""The farm's parts without a farm: job functions called in this process, the worker's
job allow-list, trees, TLS options, merging measurements, and the light device side."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import edgeort
from edgeort.bundle import open_bundle
from edgeort.errors import IntegrityError, UsageError
from edgeort.farm import jobs
from edgeort.farm._tree import read_tree, tree_digest, write_tree
from edgeort.farm.merge import merge_measurements
from edgeort.farm.resources import advertise
from edgeort.farm.security import address_with_scheme, make_security
from tests.conftest import REPO
from tests.fresh import last_json
from tests.models import make_mlp


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    out = tmp_path / "mlp.ortpackage"
    edgeort.package(make_mlp(tmp_path, batch=1), ["cpu"], output=out, measure_speed=False)
    return out


def _digest(tree: dict[str, bytes]) -> str:
    return hashlib.sha256(tree["manifest.json"]).hexdigest()


def test_bench_job_runs_a_verified_bundle_and_returns_a_row(bundle: Path) -> None:
    tree = read_tree(bundle)
    (name,) = [v.name for v in open_bundle(bundle).variants]
    row = jobs.bench_job(tree, _digest(tree), name, runs=3, warmup=0)
    assert row["ok"] and row["variant"] == name and row["runs"] == 3
    assert 0 < row["p50_ms"] <= row["p99_ms"]


def test_bench_job_refuses_a_bundle_that_does_not_match_its_digest(bundle: Path) -> None:
    tree = read_tree(bundle)
    name = open_bundle(bundle).variants[0].name
    wrong = jobs.bench_job(tree, "0" * 64, name, runs=1)
    assert not wrong["ok"] and wrong["error"]["type"] == "IntegrityError"
    model = next(k for k in tree if k.endswith("model.onnx"))
    tampered = {**tree, model: tree[model][:-1] + bytes([tree[model][-1] ^ 1])}
    row = jobs.bench_job(tampered, _digest(tree), name, runs=1)
    assert not row["ok"] and row["error"]["type"] == "IntegrityError", row


def test_package_job_returns_an_error_by_value_for_a_bad_model(tmp_path: Path) -> None:
    model = make_mlp(tmp_path, batch=1)
    tree = read_tree(model)
    request = {"model_name": model.name, "model_sha256": "1" * 64, "target": "cpu-x86-64"}
    res = jobs.package_job(request, tree)
    assert not res["ok"] and res["error"]["type"] == "IntegrityError"
    assert "received model mlp.onnx" in res["error"]["message"]


def test_package_job_passes_the_packaging_options_through(tmp_path: Path) -> None:
    model = make_mlp(tmp_path, batch=1)
    request = {
        "model_name": model.name,
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "target": "cpu-x86-64",
        "measure_speed": False,
        "state": {},
        "family": "generic",
        "metric": "cosine",
        "name": "farmed",
        "version": "3.1",
    }
    res = jobs.package_job(request, read_tree(model))
    assert res["ok"], res
    got = open_bundle(write_tree(res["tree"], tmp_path / "got"))
    assert (got.package_name, got.package_version) == ("farmed", "3.1")
    (variant,) = got.variants
    assert variant.metadata["accuracy"]["metric"] == "cosine"
    local = tmp_path / "local.ortpackage"  # the same call here gives the same files
    edgeort.package(
        model, ["cpu-x86-64"], output=local, measure_speed=False, here=False, state={},
        family="generic", metric="cosine", name="farmed", version="3.1",
    )  # fmt: skip
    (mine,) = open_bundle(local).variants
    assert {f.path: f.sha256 for f in variant.files} == {f.path: f.sha256 for f in mine.files}
    bad = jobs.package_job({**request, "version": "no spaces"}, read_tree(model))
    assert not bad["ok"] and "--version" in bad["error"]["message"]


def test_package_options_without_a_farm_form_are_refused_with_farm() -> None:
    from click.testing import CliRunner

    from edgeort.cli import cli
    from edgeort.farm.client import farm_package

    model = str(REPO / "examples" / "digits" / "model.onnx")
    base = ["package", model, "-t", "cpu", "-o", "x", "--farm", "127.0.0.1:9"]
    for extra in (["--keep-going"], ["--runtimes", "none"], ["--allow-install"]):
        result = CliRunner().invoke(cli, [*base, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert f"{extra[0]} does not apply with --farm" in result.stderr
    with pytest.raises(UsageError, match="callable cannot travel"):
        farm_package(None, [model], ["cpu"], output="x", metric=lambda a, b: 1.0)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--name"):
        farm_package(None, [model], ["cpu"], output="x", name="-bad")


def test_the_worker_runs_only_edgeorts_job_functions() -> None:
    from dask._task_spec import Task

    from edgeort.farm.worker import refusal

    assert refusal(Task("k", jobs.bench_job, 1)) is None
    assert refusal(Task("k", jobs.package_job, 1)) is None
    assert "refused posix.getpid" in (refusal(Task("k", os.getpid)) or "")
    assert "refused" in (refusal(Task("k", lambda: 1)) or "")

    def bench_job() -> None:  # same name, not the same function
        return None

    bench_job.__module__ = jobs.__name__
    assert refusal(Task("k", bench_job)) is not None


def test_trees_round_trip_and_refuse_escaping_paths(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.bin").write_bytes(b"\x00\x01")
    (src / "y.txt").write_text("y")
    tree = read_tree(src)
    assert tree == {"a/x.bin": b"\x00\x01", "y.txt": b"y"}
    copy = write_tree(tree, tmp_path / "dst")
    assert read_tree(copy) == tree and tree_digest(read_tree(copy)) == tree_digest(tree)
    for bad in ("../evil", "/abs", "a/../../b"):
        with pytest.raises(IntegrityError):
            write_tree({bad: b"x"}, tmp_path / f"bad{len(bad)}")
    (src / "link").symlink_to(src / "y.txt")
    with pytest.raises(UsageError, match="not a regular file"):
        read_tree(src)


def test_tls_options_come_all_three_together(tmp_path: Path) -> None:
    assert make_security(None, None, None) is None
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(UsageError, match="missing --tls-cert, --tls-key"):
        make_security(ca, None, None)
    with pytest.raises(UsageError, match=r"--tls-key .*no such file"):
        make_security(ca, ca, tmp_path / "nokey.pem")
    assert address_with_scheme("h:1", None) == "tcp://h:1"
    assert address_with_scheme("h:1", object()) == "tls://h:1"
    assert address_with_scheme("tls://h:1", None) == "tls://h:1"


def test_resources_follow_the_probe_summary() -> None:
    info = {"build": True, "profiles": ["cpu-arm64"], "eps": ["CPUExecutionProvider"],
            "runtimes": ["tflite"]}  # fmt: skip
    res = advertise(info)
    assert res == {
        "timing": 1, "build": 1, "profile:cpu-arm64": 1, "ep:CPUExecutionProvider": 1,
        "runtime:tflite": 1,
    }  # fmt: skip
    assert "build" not in advertise({**info, "build": False})


def _row(variant: str, worker: str, fp: str, p50: float) -> dict[str, object]:
    return {
        "ok": True, "variant": variant, "worker": worker, "device_fingerprint": fp,
        "ep": "CPUExecutionProvider", "p50_ms": p50, "p95_ms": p50, "p99_ms": p50,
        "load_ms": 1.0, "runs": 5,
    }  # fmt: skip


def test_merging_measurements_reseals_and_replaces_same_device(bundle: Path) -> None:
    name = open_bundle(bundle).variants[0].name
    merge_measurements(bundle, [_row(name, "w1", "a" * 16, 2.0), _row(name, "w2", "b" * 16, 3.0)])
    merge_measurements(bundle, [_row(name, "w1", "a" * 16, 1.5), {"ok": False, "variant": name}])
    recs = open_bundle(bundle).variants[0].metadata["measurements"]  # verifies all digests
    assert sorted((r["worker"], r["ms_median"]) for r in recs) == [("w1", 1.5), ("w2", 3.0)]


def test_a_measurement_counts_for_ranking_only_on_the_same_device(bundle: Path) -> None:
    from edgeort.runtime import rank_bundle
    from edgeort.runtime.tuning import device_fingerprint

    here = device_fingerprint(edgeort.probe())
    name = open_bundle(bundle).variants[0].name
    merge_measurements(bundle, [_row(name, "other", "f" * 16, 9.0)])
    assert rank_bundle(open_bundle(bundle)).usable[0].latency_ms is None
    merge_measurements(bundle, [_row(name, "me", here, 4.25)])
    assert rank_bundle(open_bundle(bundle)).usable[0].latency_ms == 4.25


def test_merging_refuses_a_signed_bundle(bundle: Path) -> None:
    from edgeort.bundle.signing import generate_keypair, sign_bundle

    private, _public = generate_keypair()
    sign_bundle(bundle, private)
    before = (bundle / "manifest.json").read_bytes()
    name = open_bundle(bundle).variants[0].name
    with pytest.raises(UsageError, match="signed"):
        merge_measurements(bundle, [_row(name, "w1", "a" * 16, 2.0)])
    assert (bundle / "manifest.json").read_bytes() == before


LIGHT = """
import json, sys
import numpy as np
import edgeort
model = edgeort.load({bundle!r})
model.run({{"x": np.zeros((1, 16), dtype=np.float32)}})
{extra}
print(json.dumps(sorted(m for m in sys.modules
                        if m.split(".")[0] in ("dask", "distributed") or m == "edgeort.farm")))
"""


def test_the_device_runtime_never_imports_dask(bundle: Path) -> None:
    assert last_json(["-c", LIGHT.format(bundle=str(bundle), extra="")], cwd=REPO) == []
    seen = last_json(["-c", LIGHT.format(bundle=str(bundle), extra="import distributed")])
    assert "distributed" in seen  # the check sees Dask when something imports it


def test_farm_only_options_without_farm_are_an_error() -> None:
    from click.testing import CliRunner

    from edgeort.cli import cli

    model = str(REPO / "examples" / "digits" / "model.onnx")
    for args in (["bench", model, "--farm-timeout", "3"], ["bench", model, "--merge"],
                 ["package", model, "-t", "cpu", "-o", "x", "--tls-key", model]):  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert "--farm ADDRESS" in result.stderr
