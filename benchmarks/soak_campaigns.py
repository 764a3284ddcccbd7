"""Part 2 and 3 of ``benchmarks/soak.py``: parser fuzzing and the tamper campaign.

``fuzz_parsers(work, examples)``: hypothesis over the manifest, component and profile
parsers, every outcome counted, escapes (non-EdgeortError exceptions) kept. Fuzzed
manifests are not re-sealed (the parser still sees them whole; one that parses is then
refused by its self-digest); fuzzed components get a re-pinned, re-sealed manifest.
``tamper_campaign(work, n)``: ``n`` random mutations of a packaged bundle, unsigned and
signed; detected = ``edgeort.load`` raised an EdgeortError before any InferenceSession.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

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
        """The manifest re-pinned to ``comp`` and re-sealed, so the fuzz reaches the
        component parser instead of stopping at the manifest's self-digest."""
        import hashlib

        from edgeort.bundle._seal import seal_manifest

        doc = json.loads(manifest)
        doc["additional_metadata"]["edgeort"]["components_sha256"]["model"] = hashlib.sha256(
            comp
        ).hexdigest()
        return seal_manifest(json.dumps(doc).encode())

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
    from edgeort.bundle.signing import generate_keypair, sign_bundle
    from edgeort.errors import EdgeortError
    from edgeort.hardware import probe
    from edgeort.pack import package
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
