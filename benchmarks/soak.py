"""The long trust runs: faults, kills, load, property fuzzing and a tamper campaign.

1. ``pytest`` with ``EDGEORT_SOAK=1`` over ``tests/test_trust_*.py`` and
   ``tests/test_bundle_property.py``: every fault kind at every file-system call, 200
   SIGKILL trials, 8 threads x 2000 runs, a 10^4-run memory soak, 1000 load/close
   cycles, 10^4 hypothesis examples per bundle property test. Each test appends its
   figures to a stats file (``EDGEORT_SOAK_STATS``).
2. In process, hypothesis over the manifest, component and profile parsers (10^4
   examples each, ``--examples``): outcomes counted, escapes (non-EdgeortError) listed.
3. A tamper campaign over two packaged bundles (``--tamper`` mutations, unsigned and
   signed): byte flips, truncations, appends, files swapped between the bundles, files
   added or removed; a mutation is *detected* when ``edgeort.load`` raises an
   EdgeortError before any ``InferenceSession`` is created.

Writes ``benchmarks/results/soak.json`` and ``soak.md`` and prints the summary.
Run: ``.venv/bin/python benchmarks/soak.py [--examples N] [--tamper N] [--skip-pytest]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
PYTEST_FILES = [
    "tests/test_trust_faults.py",
    "tests/test_trust_kill.py",
    "tests/test_trust_load.py",
    "tests/test_trust_cache.py",
    "tests/test_bundle_property.py",
]


def machine() -> dict[str, Any]:
    import onnxruntime as ort
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "root": os.geteuid() == 0 if hasattr(os, "geteuid") else None,
    }


# --------------------------------------------------------------------------- 1. pytest


def run_pytest(work: Path) -> dict[str, Any]:
    stats, junit = work / "stats.jsonl", work / "junit.xml"
    env = {**os.environ, "EDGEORT_SOAK": "1", "EDGEORT_SOAK_STATS": str(stats)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PYTEST_FILES]
    start = time.monotonic()
    done = subprocess.run(
        [*cmd, f"--junitxml={junit}"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    suite = ET.parse(junit).getroot().find("testsuite") if junit.exists() else None
    attrs = suite.attrib if suite is not None else {}
    lines = stats.read_text().splitlines() if stats.exists() else []
    return {
        "exit_code": done.returncode,
        "tests": int(attrs.get("tests", 0)),
        "failures": int(attrs.get("failures", 0)) + int(attrs.get("errors", 0)),
        "skipped": int(attrs.get("skipped", 0)),
        "seconds": round(time.monotonic() - start, 1),
        "tail": done.stdout.strip().splitlines()[-3:],
        "records": [json.loads(line) for line in lines],
    }


# --------------------------------------------------------------------------- 2. parsers


class Tally:
    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.escapes: list[str] = []

    def run(self, fn: Any) -> None:
        from edgeort.errors import EdgeortError

        try:
            fn()
        except EdgeortError as exc:
            self.outcomes[type(exc).__name__] += 1
        except Exception as exc:  # the finding this run exists for
            self.outcomes["escape"] += 1
            if len(self.escapes) < 20:
                self.escapes.append(f"{type(exc).__name__}: {exc}"[:300])
        else:
            self.outcomes["valid"] += 1

    def to_json(self) -> dict[str, Any]:
        return {"cases": sum(self.outcomes.values()), "outcomes": dict(self.outcomes),
                "escapes": self.outcomes["escape"], "escape_examples": self.escapes}  # fmt: skip


def _mutated_text(data: Any, text: str) -> bytes:
    """A valid document with a few random line/char edits (structure-aware-ish fuzz)."""
    from hypothesis import strategies as st

    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, max(0, len(lines) - 1)))
        op = data.draw(st.sampled_from(["drop", "dup", "edit", "value"]))
        if not lines:
            break
        if op == "drop":
            lines.pop(i)
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "edit" and lines[i]:
            j = data.draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:j] + data.draw(st.text(max_size=3)) + lines[i][j + 1 :]
        elif "=" in lines[i] or ":" in lines[i]:
            sep = "=" if "=" in lines[i] else ":"
            scalar = st.sampled_from(
                ['""', "0", "-1", "1e999", "true", "[]", "{}", '"../x"', "null"]
            )
            lines[i] = lines[i].split(sep, 1)[0] + sep + " " + data.draw(scalar)
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def fuzz_parsers(work: Path, examples: int) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from edgeort.bundle import read_bundle
    from edgeort.profiles import builtin_dir, load_profile_file
    from tests.test_trust_support import write_version

    good = write_version(work, work / "fuzz-base", "2")
    manifest = (good / "manifest.json").read_bytes()
    component = (good / "model" / "component.json").read_bytes()
    profile_text = (builtin_dir() / "cpu-x86-64.toml").read_text()
    case = work / "fuzz-case"
    shutil.copytree(good, case)
    run = settings(max_examples=examples, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))  # fmt: skip
    tallies = {"manifest.json": Tally(), "component.json": Tally(), "profile TOML": Tally()}

    def manifest_for(comp: bytes) -> bytes:
        import hashlib

        doc = json.loads(manifest)
        doc["additional_metadata"]["edgeort"]["components_sha256"]["model"] = hashlib.sha256(
            comp
        ).hexdigest()
        return json.dumps(doc).encode()

    @run
    @given(st.data())
    def fuzz_manifest(data: Any) -> None:
        raw = data.draw(
            st.binary(max_size=2048)
            | st.just(b"").map(lambda _: _mutated_text(data, manifest.decode()))
        )
        (case / "manifest.json").write_bytes(raw)
        (case / "model" / "component.json").write_bytes(component)
        tallies["manifest.json"].run(lambda: read_bundle(case))

    @run
    @given(st.data())
    def fuzz_component(data: Any) -> None:
        raw = data.draw(
            st.binary(max_size=2048)
            | st.just(b"").map(lambda _: _mutated_text(data, component.decode()))
        )
        (case / "model" / "component.json").write_bytes(raw)
        (case / "manifest.json").write_bytes(manifest_for(raw))  # reach the component parser
        tallies["component.json"].run(lambda: read_bundle(case))

    @run
    @given(st.data())
    def fuzz_profile(data: Any) -> None:
        raw = data.draw(
            st.binary(max_size=2048) | st.just(b"").map(lambda _: _mutated_text(data, profile_text))
        )
        path = work / "fuzz-profile.toml"
        path.write_bytes(raw)
        tallies["profile TOML"].run(lambda: load_profile_file(path))

    for fn in (fuzz_manifest, fuzz_component, fuzz_profile):
        fn()
    return {name: t.to_json() for name, t in tallies.items()}


# --------------------------------------------------------------------------- 3. tamper


def _mutate(root: Path, other: Path, rng: random.Random) -> tuple[str, str]:
    """Apply one random mutation under ``root``; (kind:file label, detail)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    path = rng.choice(files)
    rel = path.relative_to(root).as_posix()
    kind = rng.choice(["flip", "truncate", "append", "swap", "add", "remove"])
    data = path.read_bytes()
    detail = ""
    if kind == "flip" and data:
        i = rng.randrange(len(data))
        new = data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1 :]
        path.write_bytes(new)
        around = slice(max(0, i - 12), i + 12)
        detail = f"flip {rel} byte {i}: {data[around]!r} -> {new[around]!r}"
    elif kind == "truncate" and data:
        path.write_bytes(data[: rng.randrange(len(data))])
    elif kind == "swap" and (other / rel).is_file() and (other / rel).read_bytes() != data:
        shutil.copyfile(other / rel, path)
    elif kind == "add":
        (path.parent / f"extra{rng.randrange(100)}.bin").write_bytes(
            os.urandom(rng.randrange(1, 64))
        )
    elif kind == "remove":
        path.unlink()
    else:
        kind = "append"
        path.write_bytes(data + os.urandom(rng.randrange(1, 64)))
    label = "model file" if rel.startswith("model/") and not rel.endswith(".json") else rel
    return f"{kind}:{label}", detail if kind == "flip" else f"{kind} {rel}"


def tamper_campaign(work: Path, n: int) -> dict[str, Any]:
    import onnxruntime as ort

    import edgeort
    from edgeort.errors import EdgeortError
    from edgeort.pack import package
    from edgeort.probe import probe
    from edgeort.signing import generate_keypair, sign_bundle
    from tests.models import make_mlp

    a = package(make_mlp(work / "ta", seed=0), ["cpu"], output=work / "A", measure_speed=False).path
    b = package(make_mlp(work / "tb", seed=1), ["cpu"], output=work / "B", measure_speed=False).path
    private, public = generate_keypair()
    (work / "trusted.pem").write_bytes(public)
    device = probe(register_plugins=False)
    sessions = [0]
    real = ort.InferenceSession

    def spy(*args: Any, **kwargs: Any) -> Any:
        sessions[0] += 1
        return real(*args, **kwargs)

    out: dict[str, Any] = {}
    ort.InferenceSession = spy  # type: ignore[misc]
    try:
        for signed in (False, True):
            base = work / ("signed" if signed else "unsigned")
            shutil.copytree(a, base)
            other = work / ("signed-B" if signed else "unsigned-B")
            shutil.copytree(b, other)
            if signed:
                sign_bundle(base, private, sequence=1)
                sign_bundle(other, private, sequence=1)
                os.environ["EDGEORT_TRUSTED_KEYS"] = str(work / "trusted.pem")
            rng = random.Random(1234 + signed)
            per: dict[str, Counter[str]] = {}
            examples: list[str] = []
            for i in range(n):
                case = work / f"case-{signed}-{i}"
                shutil.copytree(base, case)
                what, detail = _mutate(case, other, rng)
                before = sessions[0]
                try:
                    edgeort.load(case, device=device).close()
                    verdict = "undetected"
                    examples.append(detail)
                except EdgeortError:
                    verdict = "detected" if sessions[0] == before else "detected after ORT"
                except Exception as exc:  # an escape
                    verdict = f"escape {type(exc).__name__}"
                per.setdefault(what, Counter())[verdict] += 1
                shutil.rmtree(case)
            os.environ.pop("EDGEORT_TRUSTED_KEYS", None)
            total = Counter[str]()
            for counts in per.values():
                total.update(counts)
            out["signed" if signed else "unsigned"] = {
                "mutations": n, "verdicts": dict(total),
                "detection_rate": round(total["detected"] / n, 4),
                "undetected_by_kind": {
                    k: c["undetected"] for k, c in sorted(per.items()) if c["undetected"]
                },
                "undetected_examples": examples[:10],
            }  # fmt: skip
    finally:
        ort.InferenceSession = real  # type: ignore[misc]
    return out


# --------------------------------------------------------------------------- report


def _records(pytest_part: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in pytest_part.get("records", []) if r.get("name") == name]


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, from the parts that ran."""
    part = result.get("pytest", {})
    faults = _records(part, "faults")
    kill = _records(part, "kill")
    threads = _records(part, "threads")
    memory = _records(part, "memory")
    cycles = _records(part, "load_close")
    parsers = result.get("parsers", {})
    tamper = result.get("tamper", {})
    out: dict[str, Any] = {
        "pytest": f"{part.get('tests', 0)} tests, {part.get('failures', 0)} failed"
        if part
        else None,
        "fault_trials": sum(r["trials"] for r in faults),
        "fault_problems": sum(r["problems"] for r in faults),
        "fault_escapes": sum(r["escapes"] for r in faults),
        "property_cases": sum(p["cases"] for p in parsers.values()),
        "property_escapes": sum(p["escapes"] for p in parsers.values()),
    }
    if kill:
        k = kill[0]
        out.update(kill_trials=k["trials"], kill_corruptions=k["corruptions"],
                   kill_outcomes=k["outcomes"], pack_tmp_dirs_left=k["pack_tmp_left"])  # fmt: skip
    if threads:
        t = threads[0]
        out["thread_runs"] = f"{t['threads']} x {t['runs_per_thread']}"
        out.update(thread_errors=t["errors"], thread_mismatches=t["mismatches"])
    if memory:
        out.update(
            memory_runs=memory[0]["runs"],
            rss_slope_mb_per_1k_runs=memory[0]["rss_slope_mb_per_1k_runs"],
        )
    if cycles:
        c = cycles[0]
        out.update(load_close_cycles=c["cycles"], fd_drift=c["fd_drift"],
                   rss_slope_mb_per_100_cycles=c["rss_slope_mb_per_100_cycles"])  # fmt: skip
    for key, part_t in tamper.items():
        out[f"tamper_{key}_detection_rate"] = part_t["detection_rate"]
    return out


def markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["summary"]
    lines = [
        "# Trust soak",
        "",
        f"{m['cpu']}, {m['logical_cores']} logical cores, {m['memory_gb']} GB, {m['os']}, "
        f"Python {m['python']}, onnxruntime {m['onnxruntime']}, root: {m['root']}; "
        f"{result['seconds']} s in all.",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in s.items()),
        "",
    ]
    for name, p in result.get("parsers", {}).items():
        lines.append(f"- fuzz {name}: {p['cases']} cases, outcomes {p['outcomes']}")
    for name, t in result.get("tamper", {}).items():
        lines.append(f"- tamper ({name}): {t['mutations']} mutations, {t['verdicts']}; "
                     f"undetected by kind: {t['undetected_by_kind'] or 'none'}")  # fmt: skip
        lines += [f"  - undetected: `{e}`" for e in t.get("undetected_examples", [])]
    for r in _records(result.get("pytest", {}), "faults"):
        lines.append(f"- faults, {r['campaign']}: {r['trials']} trials, {r['outcomes']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--examples", type=int, default=10_000, help="hypothesis examples per parser"
    )
    parser.add_argument("--tamper", type=int, default=1000, help="mutations per campaign")
    parser.add_argument("--skip-pytest", action="store_true", help="only parts 2 and 3")
    args = parser.parse_args(argv)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgeort-soak-") as tmp:
        work = Path(tmp)
        os.environ["EDGEORT_CACHE_DIR"] = str(work / "cache")
        os.environ["EDGEORT_CONFIG_DIR"] = str(work / "config")
        os.environ.pop("EDGEORT_TRUSTED_KEYS", None)
        result: dict[str, Any] = {"machine": machine()}
        if not args.skip_pytest:
            result["pytest"] = run_pytest(work)
            print("pytest:", result["pytest"]["tail"], flush=True)
        result["parsers"] = fuzz_parsers(work, args.examples)
        print("parsers:", {k: v["outcomes"] for k, v in result["parsers"].items()}, flush=True)
        result["tamper"] = tamper_campaign(work, args.tamper)
        print("tamper:", {k: v["verdicts"] for k, v in result["tamper"].items()}, flush=True)
    result["seconds"] = round(time.monotonic() - start, 1)
    result["summary"] = summary(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    from edgeort._fs import atomic_write_text

    atomic_write_text(RESULTS / "soak.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    atomic_write_text(RESULTS / "soak.md", markdown(result))
    print(markdown(result))
    bad = result["summary"]
    failed = bool(result.get("pytest", {}).get("failures")) or bad["property_escapes"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
