"""What the packager records per variant (``additional_metadata.edgeort``).

See ``docs/bundle-format.md`` section 5 for the keys the bundle reader requires; this
module adds the packager's own: ``recipe``, ``accuracy``, ``latency``, ``gates``,
``fusion``, ``family``, ``source_model``, ``prepare`` notes.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from edgeort._versions import version_tuple
from edgeort.bundle import TensorSpec
from edgeort.pack.evaluate import LATENCY_RUNS
from edgeort.pack.load import io_info
from edgeort.pack.target import TargetOutcome

__all__ = ["accuracy_json", "bundle_dim", "latency_json", "signature", "variant_metadata"]

log = logging.getLogger(__name__)

_DIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,255}")


def bundle_dim(dim: int | str | None) -> int | str | None:
    """A model dim as the bundle records it (docs/bundle-format.md section 5): fixed
    ints and dim *names* as they are; a symbolic *expression* (shape inference writes
    e.g. ``(floor(height/2 - 1/2)) + 1``) or an over-long string becomes ``null``, an
    unnamed dynamic dim -- an expression names no size the caller feeds."""
    if isinstance(dim, str) and not _DIM_NAME.fullmatch(dim):
        return None
    return dim


def _tensors(infos: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
    return [
        {"name": i.name, "dtype": i.dtype, "shape": [bundle_dim(d) for d in i.shape]} for i in infos
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def signature(
    model: Path,
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...], int, dict[str, int]]:
    """Inputs, outputs, IR version and opsets (``""`` = ai.onnx) of an ONNX file."""
    proto = onnx.load_model(str(model), load_external_data=False)
    inputs, outputs = io_info(proto)
    opsets = {
        (op.domain if op.domain != "ai.onnx" else ""): int(op.version) for op in proto.opset_import
    }
    return inputs, outputs, int(proto.ir_version), dict(sorted(opsets.items()))


def accuracy_json(outcome: TargetOutcome) -> dict[str, Any]:
    cand, work = outcome.chosen, outcome.work
    data = {
        **cand.gate.to_json(),
        **cand.metrics.to_json(),
        # validation | calibration (no validation data given) | synthetic; data_source
        # repeats it for readers of bundles written before "calibration" was a value.
        "data": work.data_kind,
        "data_source": work.data_kind,
        "on_ep": cand.on_ep,
        # True when on_ep ran as a simulator here (QNN's HTP backend on x86-64).
        "simulated": bool(outcome.choice.simulated and cand.on_ep == outcome.choice.on_ep),
    }
    if cand.on_ep_reason:
        data["on_ep_reason"] = cand.on_ep_reason
    if cand.runtime is not None:  # verified in a target runtime (edgeort.pack.inruntime)
        data["runtime"] = dict(cand.runtime)
    ref = work.reference_metrics.top1_accuracy
    if ref is not None:
        data["fp32_top1_accuracy"] = ref
    return data


def _ep_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def _fingerprint() -> str | None:
    """This build machine's fingerprint: the runtime trusts a recorded latency only on
    hardware with the same one (:func:`edgeort.runtime.tuning.device_fingerprint`)."""
    try:
        from edgeort.hardware import probe
        from edgeort.runtime.tuning import device_fingerprint

        return device_fingerprint(probe())
    except Exception as exc:  # the probe is best effort here: no fingerprint, no reuse
        log.info("no device fingerprint for the latency record: %s", exc)
        return None


def latency_json(outcome: TargetOutcome) -> dict[str, Any] | None:
    cand = outcome.chosen
    if cand.latency_ms is None:
        return None
    runtime = outcome.work.profile.runtime
    out: dict[str, Any] = {
        "ms_median": round(cand.latency_ms, 4),
        "ep": cand.on_ep,
        "device": outcome.choice.device_type,
        "device_fingerprint": _fingerprint(),
        "runs": LATENCY_RUNS,
        "ort_version": ort.__version__,
        "ep_version": _ep_version(runtime.package),
    }
    if outcome.fp32_latency_ms is not None:
        out["fp32_ms_median"] = round(outcome.fp32_latency_ms, 4)
    if cand.runtime is not None:  # measured in a target runtime, with its ORT build
        out.update(
            device=runtime.device or out["device"],
            ort_version=cand.runtime.get("onnxruntime"),
            ort_build=cand.runtime.get("ort_build"),
            ep_version=cand.runtime.get("ort_build_version"),
            runtime=cand.runtime.get("name"),
        )
        if cand.runtime.get("support"):
            out["support"] = cand.runtime["support"]
    return out


def _min_ort(outcome: TargetOutcome) -> str:
    floor = outcome.work.profile.runtime.min_ort
    asked = outcome.work.min_ort
    if asked is not None and outcome.chosen.model_file.suffix != ".ort":
        # --min-ort: the file was fitted to it; the profile's floor still holds above it
        return floor if version_tuple(floor) > version_tuple(asked) else asked
    if outcome.chosen.model_file.suffix == ".ort":  # ORT format written by this ORT
        here = ".".join(str(p) for p in version_tuple(ort.__version__)[:2])
        return here if version_tuple(here) > version_tuple(floor) else floor
    return floor


def refusal_json(outcome: TargetOutcome) -> dict[str, Any] | None:
    """Where and why the variant's EP, present at build time, refused the variant: the
    runtime ranks it unrunnable on the same arch (:func:`edgeort.runtime.ranking.ep_refused`)."""
    cand = outcome.chosen
    if not cand.ep_refused:
        return None
    from edgeort.hardware._platform import this_arch

    runtime = outcome.work.profile.runtime
    return {
        "ep": runtime.ep,
        "reason": cand.ep_refused,
        "arch": this_arch(),
        "simulated": outcome.choice.simulated,
        "ort_version": ort.__version__,
        "ep_version": _ep_version(runtime.package),
    }


def variant_metadata(
    outcome: TargetOutcome, source_sha256: str, source_name: str
) -> dict[str, Any]:
    cand, work, profile = outcome.chosen, outcome.work, outcome.work.profile
    onnx_file = cand.built if cand.model_file.suffix == ".ort" else cand.model_file
    inputs, outputs, ir_version, opsets = signature(onnx_file)
    return {
        "profile": profile.name,
        "profile_version": profile.version,
        "precision": cand.precision,
        "recipe": _plain(asdict(cand.recipe)),
        "recipe_label": cand.label,
        "inputs": _tensors(inputs),
        "outputs": _tensors(outputs),
        "ir_version": ir_version,
        "opsets": opsets,
        "min_ort": _min_ort(outcome),
        "ep_package": profile.runtime.package,
        "family": work.family,
        "fusion": dict(work.fused_stats),
        "accuracy": accuracy_json(outcome),
        "latency": latency_json(outcome),
        "ep_refused": refusal_json(outcome),
        "gates": [g.to_json() for g in outcome.gates],
        "prepare": list(work.notes) + list(cand.notes),
        "sample_shapes": _sample_shapes(work.verify_data),
        "source_model": {"name": source_name, "sha256": source_sha256},
        **({"frozen_inputs": dict(work.frozen)} if work.frozen else {}),
        "built_with": {"onnxruntime": ort.__version__, "onnx": onnx.__version__},
        **_compat(outcome),
    }


def _sample_shapes(data: Any) -> dict[str, list[int]]:
    """Input shapes of the first verification sample: the sizes latency was measured at,
    and what ``bench``/``tune``/``profile`` feed for dynamic dims unless told."""
    if not data.samples:
        return {}
    return {name: [int(d) for d in np.shape(arr)] for name, arr in data.sample(0).items()}


def _compat(outcome: TargetOutcome) -> dict[str, Any]:
    """``compat``: what ``--min-ort`` asked and did (absent without it)."""
    asked = outcome.work.min_ort
    if asked is None:
        return {}
    from edgeort.pack.compat import limits_for

    row = limits_for(asked)
    done = [n for n in outcome.chosen.notes if n.startswith("--min-ort")]
    return {
        "compat": {
            "min_ort": asked,
            "max_opset": row.max_opset,
            "max_ir": row.max_ir,
            "converted": done,
        }
    }
