"""Verify a target's candidate in a target runtime (docs/runtimes.md), when the target's
EP cannot run in this process but a runtime can (the OpenVINO variant on an AMD host,
in the classic ``onnxruntime-openvino`` build).

Each candidate is written as a one-variant bundle and run by the runtime's worker with
:func:`edgeort.load` -- the device's own loader -- on the verification data; its outputs
come back as ``.npy`` files and are compared to the fp32 reference here. The variant
records the runtime: name, ORT build and version, and the latency measured there when
the EP runs for real (not in a simulator).

``runtimes``: ``"auto"`` (use a created runtime that runs the EP; create a missing
built-in one only when ``allow_install``), ``"none"``, or runtime names (verify every
target whose EP one of them runs there, even when it also runs in-process).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeort.bundle import TensorSpec
from edgeort.errors import EdgeortError, PackageError, UsageError
from edgeort.hardware.ep import CPU_EP
from edgeort.pack.data import Dataset
from edgeort.profiles import Profile

__all__ = ["RemoteRun", "RuntimeVerifier", "parse_runtimes", "simulated_here"]

log = logging.getLogger(__name__)

CPU = CPU_EP
AUTO, NONE = "auto", "none"


def parse_runtimes(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"auto"`` / ``"none"`` / names (a list, or one comma-separated string)."""
    if value is None:
        return (AUTO,)
    items = [value] if isinstance(value, str) else list(value)
    names = tuple(n.strip() for item in items for n in str(item).split(",") if n.strip())
    if not names:
        return (AUTO,)
    if (AUTO in names or NONE in names) and len(names) > 1:
        raise UsageError(
            f"--runtimes {','.join(names)}: 'auto' and 'none' stand alone; or name runtimes",
            option="--runtimes",
        )
    return names


def simulated_here(profile: Profile) -> bool:
    """The profile's EP runs only in simulation on this machine's arch (QNN on x86_64):
    verified in a runtime all the same, but its latency means nothing."""
    from edgeort.hardware.ep import simulated_here as simulated

    return simulated(profile.runtime.ep, profile)


@dataclass(frozen=True, slots=True)
class RemoteRun:
    outputs: list[np.ndarray]
    on_ep: str
    reason: str
    latency_ms: float | None
    record: dict[str, Any]  # accuracy.runtime / latency.runtime in the manifest


@dataclass
class RuntimeVerifier:
    """One per packaging run: picks runtimes per target and keeps their workers."""

    runtimes: tuple[str, ...] = (AUTO,)
    allow_install: bool = False
    _workers: dict[str, Any] = field(default_factory=dict)
    _work: Path | None = None

    def pick(self, profile: Profile, runs_here: bool, say: Callable[[str], None]) -> Any:
        """The runtime to verify ``profile``'s variants in, or None (in-process);
        ``say`` gets what was decided when it is not obvious (a runtime to create)."""
        from edgeort import runtimes

        ep = profile.runtime.ep
        if ep == CPU or self.runtimes == (NONE,):
            return None
        if self.runtimes != (AUTO,):
            for name in self.runtimes:
                if self.allow_install and name in runtimes.BUILTIN_RECIPES:
                    runtime = runtimes.add(name, on_progress=say)  # reused when it exists
                else:
                    runtime = runtimes.get(name)
                if runtime.runs(ep):
                    return runtime
            return None
        if runs_here:
            return None
        found = [r for r in runtimes.list_runtimes() if r.runs(ep)]
        if found:
            return found[0]
        recipe = runtimes.recipe_for_ep(ep)
        if recipe is None:
            return None
        if not self.allow_install:
            say(
                f"{ep} does not run here; the built-in runtime {recipe.name!r} would run it "
                f"({' '.join(recipe.requirements)}): create it with 'edgeort runtimes add "
                f"{recipe.name}' or pass --allow-install (network install)"
            )
            return None
        say(f"creating the built-in runtime {recipe.name!r} (network install)")
        return runtimes.add(recipe.name, on_progress=say)

    def _worker(self, runtime: Any) -> Any:
        if runtime.name not in self._workers:
            self._workers[runtime.name] = runtime.worker()
        return self._workers[runtime.name]

    def verify(
        self,
        runtime: Any,
        profile: Profile,
        model: Path,
        extra: Sequence[Path],
        onnx_file: Path,
        data: Dataset,
        *,
        precision: str,
        measure: bool,
    ) -> RemoteRun:
        """Run ``model`` as ``profile``'s variant in ``runtime`` on every sample of
        ``data``; the stacked outputs in the model's output order."""
        from edgeort.pack.manifest import signature

        if self._work is None:
            self._work = Path(tempfile.mkdtemp(prefix="edgeort-inruntime-"))
        work = Path(tempfile.mkdtemp(dir=self._work))
        sig = signature(onnx_file)
        bundle = _one_variant_bundle(work, profile, model, extra, sig, precision)
        inputs = {}
        for index, (name, array) in enumerate(data.arrays.items()):
            path = work / f"in{index}.npy"
            np.save(path, array, allow_pickle=False)
            inputs[name] = {"npy": str(path), "stacked": bool(data.stacked[name])}
        out_dir = work / "out"
        out_dir.mkdir()
        ep = profile.runtime.ep
        request = {
            "job": "run",
            "bundle": str(bundle),
            "profile": profile.name,
            "providers": [ep],
            "inputs": inputs,
            "samples": data.samples,
            "out_dir": str(out_dir),
            "latency": {"runs": _latency_runs(), "warmup": 3} if measure else None,
        }
        try:
            result = self._worker(runtime).call(request)
        except EdgeortError as exc:
            raise PackageError(
                f"target {profile.name}: verifying {model.name} in runtime {runtime.name} "
                f"({runtime.ort_build}) failed: {exc}",
                target=profile.name,
            ) from exc
        outputs = [np.load(result["outputs"][o.name], allow_pickle=False) for o in sig[1]]
        shutil.rmtree(work, ignore_errors=True)
        got = str(result.get("ep"))
        placement = result.get("placement") or {}
        on_ep, reason = got, f"verified in runtime {runtime.name} ({runtime.ort_build})"
        if placement and not placement.get(ep):
            on_ep, reason = CPU, f"{ep} took no node of this variant in runtime {runtime.name}"
        from edgeort.hardware.ep import support_note

        record = {
            "name": runtime.name,
            "ort_build": result.get("ort_build"),
            "ort_build_version": result.get("ort_build_version"),
            "onnxruntime": result.get("onnxruntime"),
            "placement": placement,
        }
        if simulated_here(profile):
            record["simulated"] = True
        note = support_note(ep, str(runtime.info.get("cpu_vendor", "")))
        if note:
            record["support"] = note
        latency = result.get("latency") or {}
        ms = latency.get("ms_median") if on_ep == ep else None
        return RemoteRun(outputs, on_ep, reason, float(ms) if ms else None, record)

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None


def _latency_runs() -> int:
    from edgeort.pack.evaluate import LATENCY_RUNS

    return LATENCY_RUNS


def _one_variant_bundle(
    work: Path,
    profile: Profile,
    model: Path,
    extra: Sequence[Path],
    sig: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...], int, dict[str, int]],
    precision: str,
) -> Path:
    """``model`` as the only variant of a bundle, with the profile's runtime settings
    (what :mod:`edgeort.pack.write` records for the shipped variant); ``sig``: its
    :func:`edgeort.pack.manifest.signature`."""
    from edgeort.bundle import VariantSpec, write_bundle
    from edgeort.pack.manifest import bundle_dim
    from edgeort.pack.write import session_options, stage_files

    src = work / "src"
    model_name = stage_files(model, extra, src)
    inputs, outputs, ir_version, opsets = sig
    # as the shipped variant records them: a symbolic expression is an unnamed dim
    inputs, outputs = (
        tuple(
            t if t.shape is None else replace(t, shape=tuple(bundle_dim(d) for d in t.shape))
            for t in specs
        )
        for specs in (inputs, outputs)
    )
    session = session_options(profile, model_name)
    spec = VariantSpec(
        name=profile.name,
        ep=profile.runtime.ep,
        device="" if profile.runtime.simulated_on else profile.runtime.device,
        source_dir=src,
        model_file=model_name,
        provider_options={str(k): str(v) for k, v in profile.runtime.provider_options.items()},
        session_options=session,
        profile=profile.name,
        profile_version=profile.version,
        precision=precision,
        inputs=inputs,
        outputs=outputs,
        ir_version=ir_version,
        opsets=opsets,
        min_ort=profile.runtime.min_ort,
        ep_package=profile.runtime.package,
    )
    return write_bundle(work / "b.ortpackage", [spec], package_name="verify")
