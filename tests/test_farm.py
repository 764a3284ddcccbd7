"""The device farm end to end: a real Dask scheduler on 127.0.0.1 and two ``edgeort farm
join`` workers as separate processes (one farm for the module), driven through the CLI.

Both workers run on this machine, so they advertise the same profiles and EPs; where the
OpenVINO plugin lists a device here (Intel CPUs) the OpenVINO variant is verified on it
through the farm, elsewhere the job is routed to any build worker and says why.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edgeort
from edgeort.bundle import open_bundle
from tests.farm_support import Farm, edgeort_cmd, farm_env, free_port, run_cli
from tests.models import make_mlp

pytest.importorskip("distributed", reason="the farm extra (dask, distributed) is not installed")

pytestmark = pytest.mark.slow

TARGETS = ("cpu", "openvino")
WORKERS = {"w1", "w2"}


@pytest.fixture(scope="module")
def module_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    base = tmp_path_factory.mktemp("farm")
    (base / "logs").mkdir()
    f = Farm(f"127.0.0.1:{free_port()}", farm_env(base), base / "logs")
    try:
        f.start_scheduler()
        f.start_worker("w1")
        f.start_worker("w2")
        f.wait_for(WORKERS)
        yield f
    finally:
        f.stop()


@pytest.fixture
def farm(module_farm: Farm) -> Farm:
    """The module's farm with both workers running (a test may have killed one)."""
    module_farm.ensure(WORKERS)
    return module_farm


def _models(folder: Path) -> list[Path]:
    return [
        make_mlp(folder, inputs=16, hidden=32, outputs=4, batch=1, seed=1, filename="a.onnx"),
        make_mlp(folder, inputs=8, hidden=24, outputs=6, batch=1, seed=2, filename="b.onnx"),
        make_mlp(folder, inputs=32, hidden=16, outputs=2, batch=1, seed=3, filename="c.onnx"),
    ]


def _digests(bundle: Path) -> dict[str, dict[str, str]]:
    b = open_bundle(bundle)
    return {v.name: {f.path: f.sha256 for f in v.files} for v in b.variants}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".edgeort-tmp"))


def test_ls_lists_both_workers_with_their_resources(farm: Farm) -> None:
    workers = {w["name"]: w for w in farm.ls()}
    assert set(workers) == {"w1", "w2"}
    for w in workers.values():
        res, summary = w["resources"], w["summary"]
        assert res["timing"] == 1 and res["build"] == 1
        assert res["ep:CPUExecutionProvider"] == 1
        assert summary["profiles"], summary
        assert all(res[f"profile:{p}"] == 1 for p in summary["profiles"])
        assert w["nthreads"] == 1


def test_bench_farm_returns_rows_from_both_workers_and_merges(farm: Farm, tmp_path: Path) -> None:
    model = make_mlp(tmp_path, batch=1)
    bundle = tmp_path / "mlp.ortpackage"
    edgeort.package(model, ["cpu"], output=bundle, measure_speed=False)
    proc = run_cli(
        ["bench", str(bundle), "--farm", farm.address, "--runs", "5", "--warmup", "1", "--json",
         "--merge", "--farm-timeout", "180"],
        farm.env,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    rows = doc["rows"]
    assert {r["worker"] for r in rows} == {"w1", "w2"}
    import onnxruntime as ort

    for r in rows:
        assert r["ok"], r
        assert r["ep"] == "CPUExecutionProvider"
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
        assert r["load_ms"] > 0 and r["runs"] == 5
        assert r["ort_version"] == ort.__version__ and "git-commit-id" in r["ort_build"]
    assert doc["merged"] == str(bundle)
    merged = open_bundle(bundle)  # the re-sealed bundle verifies
    (variant,) = merged.variants
    recs = variant.metadata["measurements"]
    assert sorted(r["worker"] for r in recs) == ["w1", "w2"]
    assert {r["p50_ms"] for r in recs} == {r["p50_ms"] for r in rows}
    # The loader now ranks the variant as measured on this device (same fingerprint).
    from edgeort.runtime import rank_bundle

    top = rank_bundle(merged).usable[0]
    assert top.latency_ms in {r["p50_ms"] for r in recs}


def test_farm_package_equals_a_local_run(farm: Farm, tmp_path: Path) -> None:
    models = _models(tmp_path / "models")
    out = tmp_path / "farm"
    args = ["package", *map(str, models), *(a for t in TARGETS for a in ("-t", t)), "--no-speed"]
    args += ["--version", "7", "--no-state", "--metric", "cosine"]  # travel to the workers
    proc = run_cli([*args, "-o", str(out), "--farm", farm.address, "--json"], farm.env)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    events = [x["job_event"] for x in lines if "job_event" in x]
    done = [e for e in events if e["kind"] == "done"]
    assert len(done) == len(models) * len(TARGETS)  # progress per job
    assert {e["worker"] for e in done} <= {"w1", "w2"}
    result = lines[-1]["result"]
    assert not result["failed"]
    local = tmp_path / "local"
    run_cli([*args, "-o", str(local)], farm.env)
    for m in models:
        name = f"{m.stem}.ortpackage"
        assert _digests(out / name) == _digests(local / name)
        assert list(_digests(out / name)) == list(_digests(local / name))  # same order
        for b in (open_bundle(out / name), open_bundle(local / name)):
            assert b.package_version == "7"
            assert {v.metadata["accuracy"]["metric"] for v in b.variants} == {"cosine"}
    assert _leftovers(out) == []
    workers = {w["name"]: w for w in farm.ls()}
    has_ov = any(w["resources"].get("ep:OpenVINOExecutionProvider") for w in workers.values())
    variants = open_bundle(out / "a.ortpackage").variants
    ov = next(v for v in variants if v.profile.startswith("openvino"))
    if has_ov:  # verified through the farm on the real EP
        assert ov.metadata["farm"]["routed_to"] == "ep:OpenVINOExecutionProvider"
        assert ov.metadata["accuracy"]["on_ep"] == "OpenVINOExecutionProvider"
    else:
        assert ov.metadata["farm"]["routed_to"] == "build"
        assert "ep:OpenVINOExecutionProvider" in ov.metadata["farm"]["reason"]


def test_workers_rejoin_when_the_scheduler_restarts(farm: Farm) -> None:
    assert farm.scheduler is not None
    farm.scheduler.terminate()
    farm.scheduler.wait(timeout=30)
    assert farm.ls(timeout=2) == []  # nobody listens now
    farm.start_scheduler()  # same address
    workers = farm.wait_for(WORKERS)
    assert {w["name"] for w in workers} == WORKERS
    assert all(w["resources"].get("timing") == 1 for w in workers)


def _broken_model(folder: Path) -> Path:
    """Valid ONNX protobuf, but an op no runtime has: packaging fails on every worker."""
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="edgeort.test")
    graph = helper.make_graph(
        [node], "broken", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgeort.test", 1)]
    )
    path = folder / "broken.onnx"
    onnx.save(model, str(path))
    return path


def test_a_job_failing_everywhere_is_named_and_leaves_no_bundle(farm: Farm, tmp_path: Path) -> None:
    good = make_mlp(tmp_path, batch=1, filename="good.onnx")
    bad = _broken_model(tmp_path)
    out = tmp_path / "out"
    proc = run_cli(
        ["package", str(good), str(bad), "-t", "cpu", "--no-speed", "-o", str(out),
         "--farm", farm.address],
        farm.env, check=False,
    )  # fmt: skip
    assert proc.returncode == 15, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("edgeort: error:")]
    assert len(error) == 1 and "broken.onnx -> cpu-" in error[0], proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good.ortpackage"]
    open_bundle(out / "good.ortpackage")


def _slow_model(folder: Path, name: str) -> Path:
    """Big enough that a job runs for a while (several MatMul layers, timed)."""
    rng = np.random.default_rng(7)
    width, depth = 256, 6
    inits, nodes, prev = [], [], "x"
    for i in range(depth):
        w = rng.standard_normal((width, width)).astype(np.float32) * 0.05
        inits.append(onnx.numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"], f"mm{i}"))
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"], f"relu{i}"))
        prev = f"r{i}"
    nodes[-1] = helper.make_node("Relu", [f"h{depth - 1}"], ["y"], f"relu{depth - 1}")
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _processing(address: str) -> dict[str, Any]:
    from distributed import Client

    with Client(f"tcp://{address}", timeout=20, set_as_default=False) as client:
        busy = {a: ks for a, ks in client.processing().items() if ks}
        info = client.scheduler_info(n_workers=-1)["workers"]
        names = {a: str(w["name"]) for a, w in info.items()}
    return {names.get(a, a): ks for a, ks in busy.items()}


@pytest.mark.filterwarnings("ignore")  # Dask's client, in this process, only to watch jobs
def test_sigkill_of_a_worker_mid_job_still_completes_without_partial_bundle(
    farm: Farm, tmp_path: Path
) -> None:
    models = [_slow_model(tmp_path, f"s{i}") for i in range(2)]
    out = tmp_path / "out"
    cmd = edgeort_cmd(
        "package", *map(str, models), "-t", "cpu", "-o", str(out), "--farm", farm.address,
        "--farm-timeout", "300",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, env=farm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            busy = _processing(farm.address)
            victim = next((n for n in sorted(busy) if n in farm.workers), None)
            if victim is not None:
                farm.kill_worker(victim)
                killed = victim
            else:
                time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no job was seen running on a worker"
    assert proc.returncode == 0, stderr.decode()[-4000:]
    assert sorted(p.name for p in out.iterdir()) == ["s0.ortpackage", "s1.ortpackage"]
    for m in models:
        b = open_bundle(out / f"{m.stem}.ortpackage")
        assert [v.profile.startswith("cpu-") for v in b.variants] == [True]
        assert b.variants[0].metadata["farm"]["worker"] != killed or len(models) > 1
    assert _leftovers(out) == []
    assert b"wrote" in stdout


def _tls_files(folder: Path) -> dict[str, str]:
    """A CA and one member certificate (SAN 127.0.0.1) made with cryptography."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("farm CA")).issuer_name(name("farm CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder().subject_name(name("member")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False).sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    files = {
        "ca.pem": ca.public_bytes(serialization.Encoding.PEM),
        "member.pem": cert.public_bytes(serialization.Encoding.PEM),
        "member.key": pem_key(key),
    }
    for fname, data in files.items():
        (folder / fname).write_bytes(data)
    return {k: str(folder / v) for k, v in
            (("ca", "ca.pem"), ("cert", "member.pem"), ("key", "member.key"))}  # fmt: skip


def test_tls_farm_takes_members_with_certificates_only(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="cryptography (test extra) is not installed")
    tls = _tls_files(tmp_path)
    opts = ["--tls-ca-file", tls["ca"], "--tls-cert", tls["cert"], "--tls-key", tls["key"]]
    (tmp_path / "logs").mkdir()
    f = Farm(f"127.0.0.1:{free_port()}", farm_env(tmp_path), tmp_path / "logs")
    port = f.address.rsplit(":", 1)[1]
    try:
        f.scheduler = f._spawn("scheduler", "farm", "scheduler", "--port", port, *opts)
        f.workers["t1"] = f._spawn("t1", "farm", "join", f.address, "--name", "t1", *opts)
        deadline = time.monotonic() + 90
        names: list[str] = []
        while time.monotonic() < deadline and names != ["t1"]:
            proc = run_cli(["farm", "ls", f.address, "--json", *opts], f.env, check=False)
            if proc.returncode == 0:
                names = [w["name"] for w in json.loads(proc.stdout)["workers"]]
            time.sleep(1)
        assert names == ["t1"], f"TLS worker did not join; logs in {f.logs}"
        plain = run_cli(["farm", "ls", f.address, "--timeout", "3"], f.env, check=False)
        assert plain.returncode == 15, plain.stderr  # no certificate, no farm
        assert "cannot reach the farm scheduler at tcp://" in plain.stderr
    finally:
        f.stop()
