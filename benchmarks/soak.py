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

Parts 2 and 3 live in ``benchmarks/soak_campaigns.py``. Writes
``benchmarks/results/soak.json`` and ``soak.md`` and prints the summary. Exit code 1 when
a test failed or a parser let a non-EdgeortError escape.
Run: ``.venv/bin/python benchmarks/soak.py [--examples N] [--tamper N] [--skip-pytest]``
(about 12 minutes on 2 cores); ``--report-only`` rewrites soak.md from soak.json.
``--only tamper`` (repeatable: ``pytest``, ``parsers``, ``tamper``) runs just those parts
and replaces them in the existing soak.json, keeping the others; the re-run is listed
with its date, machine and time in soak.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from soak_campaigns import fuzz_parsers, tamper_campaign

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
PARTS = ("pytest", "parsers", "tamper")
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
                   kill_trials_killed_mid_write=k["leftover_trials"],
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
        f"{_machine_line(m)}; {result['seconds']} s in all.",
        "",
        *(
            f"Parts {', '.join(r['parts'])} re-run on {r['date']} ({r['seconds']} s, "
            f"{'same machine' if r['machine'] == m else _machine_line(r['machine'])}); "
            "their figures below are from that run."
            for r in result.get("reruns", [])
        ),
        *([""] if result.get("reruns") else []),
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


def _machine_line(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu']}, {m['logical_cores']} logical cores, {m['memory_gb']} GB, {m['os']}, "
        f"Python {m['python']}, onnxruntime {m['onnxruntime']}, root: {m['root']}"
    )


def run_parts(parts: set[str], args: argparse.Namespace) -> dict[str, Any]:
    """The parts asked for, in a fresh temporary cache/config."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edgeort-soak-") as tmp:
        work = Path(tmp)
        os.environ["EDGEORT_CACHE_DIR"] = str(work / "cache")
        os.environ["EDGEORT_CONFIG_DIR"] = str(work / "config")
        os.environ.pop("EDGEORT_TRUSTED_KEYS", None)
        if "pytest" in parts:
            result["pytest"] = run_pytest(work)
            print("pytest:", result["pytest"]["tail"], flush=True)
        if "parsers" in parts:
            result["parsers"] = fuzz_parsers(work, args.examples)
            print("parsers:", {k: v["outcomes"] for k, v in result["parsers"].items()}, flush=True)
        if "tamper" in parts:
            result["tamper"] = tamper_campaign(work, args.tamper)
            print("tamper:", {k: v["verdicts"] for k, v in result["tamper"].items()}, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--examples", type=int, default=10_000, help="hypothesis examples per parser"
    )
    parser.add_argument("--tamper", type=int, default=1000, help="mutations per campaign")
    parser.add_argument("--skip-pytest", action="store_true", help="only parts 2 and 3")
    parser.add_argument("--report-only", action="store_true", help="rewrite soak.md from soak.json")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only this part (repeatable) and merge it into the existing soak.json",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        result = json.loads((RESULTS / "soak.json").read_text())
        result["summary"] = summary(result)
        return write_results(result)
    start = time.monotonic()
    if args.only:
        result = json.loads((RESULTS / "soak.json").read_text())
        result.update(run_parts(set(args.only), args))
        rerun = {
            "parts": [p for p in PARTS if p in args.only],
            "date": datetime.date.today().isoformat(),
            "seconds": round(time.monotonic() - start, 1),
            "machine": machine(),
        }
        result["reruns"] = [
            r for r in result.get("reruns", []) if not set(r["parts"]) <= set(args.only)
        ] + [rerun]
    else:
        parts = set(PARTS) - ({"pytest"} if args.skip_pytest else set())
        result = {"machine": machine(), **run_parts(parts, args)}
        result["seconds"] = round(time.monotonic() - start, 1)
    result["summary"] = summary(result)
    return write_results(result)


def write_results(result: dict[str, Any]) -> int:
    from edgeort._fs import atomic_write_text

    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "soak.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    atomic_write_text(RESULTS / "soak.md", markdown(result))
    print(markdown(result))
    failed = bool(result.get("pytest", {}).get("failures"))
    return 1 if failed or result["summary"]["property_escapes"] > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
