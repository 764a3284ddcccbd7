"""Run a variant at build time: on the profile's EP where it is installed and has a
device, otherwise on the CPU EP -- and say which (``EpChoice.on_ep`` / ``reason``).

Verification sessions take the profile's provider options and session config, minus
entries that write files (``ep.context_*``) or still hold a ``{placeholder}``.
"""

from __future__ import annotations

import logging
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgeort.errors import PackageError
from edgeort.hardware._platform import normalise_arch
from edgeort.pack.data import Dataset
from edgeort.profiles import Profile
from edgeort.session import LEVELS, RECORD_PLACEMENT

__all__ = ["CPU", "EpChoice", "choose_ep", "latency_ms", "make_session", "run_dataset"]

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
LATENCY_RUNS = 20  # timed runs behind a recorded median (the manifest's latency.runs)


@dataclass(frozen=True, slots=True)
class EpChoice:
    """Where verification runs. ``on_ep`` is the EP asked for; ``reason`` says why it
    is the CPU EP when the profile wants another. ``simulated``: the EP runs here only
    in simulation (QNN HTP on x86_64), so its latency means nothing."""

    wanted: str
    on_ep: str
    reason: str = ""
    simulated: bool = False
    devices: tuple[Any, ...] = ()
    provider_options: dict[str, str] = field(default_factory=dict)

    @property
    def device_type(self) -> str:
        """``cpu`` | ``gpu`` | ``npu`` of the device verification ran on ("" unknown)."""
        if self.on_ep == CPU:
            return "cpu"
        if self.devices:
            return str(self.devices[0].device.type.name).lower()
        return ""

    @property
    def present(self) -> bool:
        """The wanted EP runs here (really, not in simulation)."""
        return self.on_ep == self.wanted and not self.simulated


def _providers_module() -> Any:
    from edgeort import providers

    return providers


def _options(profile: Profile) -> dict[str, str]:
    opts = {}
    for key, value in profile.runtime.provider_options.items():
        if "{" in str(value):
            log.info("verify: provider option %s=%s skipped (placeholder)", key, value)
            continue
        opts[str(key)] = str(value)
    return opts


def choose_ep(profile: Profile) -> EpChoice:
    """Pick the EP that verifies ``profile``'s variant on this machine."""
    ep = profile.runtime.ep
    if ep == CPU:
        return EpChoice(ep, CPU)
    simulated = normalise_arch(platform.machine()) in profile.runtime.simulated_on
    if profile.runtime.plugin_module:
        providers = _providers_module()
        try:
            registered = providers.ensure_registered(ep)
        except Exception as exc:  # registration failures are a recorded reason here
            registered, why = False, f"{ep} failed to register: {exc}"
        else:
            why = f"{ep} is not installed (pip install {profile.runtime.package})"
        if not registered:
            return EpChoice(ep, CPU, why)
        devices = list(providers.ep_devices(ep))
        wanted_type = profile.runtime.device.lower()
        if wanted_type and not simulated:
            devices = [d for d in devices if d.device.type.name.lower() == wanted_type]
        if not devices:
            where = f" of type {wanted_type}" if wanted_type and not simulated else ""
            return EpChoice(ep, CPU, f"{ep} is installed but reports no device{where} here")
        return EpChoice(ep, ep, "", simulated, tuple(devices), _options(profile))
    if ep in ort.get_available_providers():
        return EpChoice(ep, ep, "", simulated, (), _options(profile))
    return EpChoice(
        ep, CPU, f"{ep} is not in this onnxruntime build (it ships in {profile.runtime.package})"
    )


def _session_options(profile: Profile | None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry(RECORD_PLACEMENT, "1")
    if profile is not None:
        so.graph_optimization_level = LEVELS.get(
            profile.session.graph_optimization_level, ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        for key, value in profile.session.config.items():
            if not key.startswith("ep.context") and "{" not in str(value):
                so.add_session_config_entry(key, str(value))
    return so


def make_session(
    model: Path, choice: EpChoice, profile: Profile | None = None
) -> ort.InferenceSession:
    """A session for ``model`` on ``choice.on_ep`` (CPU EP as fallback for the rest)."""
    so = _session_options(profile)
    if str(model).endswith(".ort"):
        so.add_session_config_entry("session.load_model_format", "ORT")
    try:
        if choice.on_ep == CPU:
            return ort.InferenceSession(str(model), so, providers=[CPU])
        if choice.devices:
            so.add_provider_for_devices(list(choice.devices), dict(choice.provider_options))
            return ort.InferenceSession(str(model), so)
        providers = [(choice.on_ep, dict(choice.provider_options)), CPU]
        return ort.InferenceSession(str(model), so, providers=providers)
    except Exception as exc:  # ORT raises its own types; name the EP and the file
        text = str(exc).strip()
        for marker in ("[ONNXRuntimeError] : ", " : FAIL : "):
            text = text.split(marker)[-1]
        raise PackageError(
            f"{model.name}: cannot create a session on {choice.on_ep}: "
            f"{text.splitlines()[0][:400] if text else type(exc).__name__} (the way out: "
            "another recipe or fixed --shape values for this target, or leave it out with "
            "--keep-going)",
            path=model,
        ) from None


def run_dataset(
    session: ort.InferenceSession,
    data: Dataset,
    *,
    fed: dict[str, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Run every sample; per output, the results stacked along a new samples axis
    (the batch axis when the model's batch is 1).

    With state pairs (``data.state``) the samples are steps run in order, as the model
    is used: each state input gets the previous step's state output (the data's value
    at the start of each sequence). ``fed`` (when given) receives, per state input, the
    values actually fed, stacked ``[N, *shape]``."""
    names = [o.name for o in session.get_outputs()]
    per_output: list[list[np.ndarray]] = [[] for _ in names]
    index = {name: i for i, name in enumerate(names)}
    pairs = [(i, o) for i, o in data.state if o in index]
    fed_steps: dict[str, list[np.ndarray]] = {i: [] for i, _ in pairs}
    previous: list[np.ndarray] = []
    for step, feed in enumerate(data.feeds()):
        if pairs and previous and not data.starts_sequence(step):
            for inp, out in pairs:
                feed[inp] = previous[index[out]]
        for inp, _ in pairs:
            fed_steps[inp].append(feed[inp])
        try:
            previous = [np.asarray(v) for v in session.run(names, feed)]
        except Exception as exc:  # ORT raises its own types; name the sample and inputs
            shapes = ", ".join(f"{k} {v.dtype.name}{list(v.shape)}" for k, v in feed.items())
            text = str(exc).strip()
            why = text.splitlines()[0][:300] if text else type(exc).__name__
            hint = (
                "; synthetic inputs can be outside what the model accepts: pass real "
                "inputs with --validation/--calibration"
                if data.synthetic
                else ""
            )
            raise PackageError(
                f"running sample {step} of {data.source} failed ({shapes}): {why}{hint}"
            ) from None
        for slot, value in zip(per_output, previous, strict=True):
            slot.append(value)
    if fed is not None:
        fed.update({inp: np.stack(values) for inp, values in fed_steps.items() if values})
    return [_stack(chunks) for chunks in per_output]


def _stack(chunks: Sequence[np.ndarray]) -> np.ndarray:
    if all(c.ndim >= 1 and c.shape[0] == 1 for c in chunks):
        return np.concatenate(chunks, axis=0)
    return np.stack(chunks, axis=0)


def latency_ms(
    session: ort.InferenceSession,
    feed: dict[str, np.ndarray],
    *,
    runs: int = LATENCY_RUNS,
    warmup: int = 3,
) -> float:
    """Median wall time of ``runs`` runs after ``warmup`` runs, in milliseconds."""
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(times))


def ep_node_counts(session: ort.InferenceSession) -> dict[str, int]:
    """Nodes per EP, when this onnxruntime records the assignment (1.24+)."""
    counts: dict[str, int] = {}
    try:
        for sub in session.get_provider_graph_assignment_info():
            counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    except Exception:  # older ORT or recording off: the assignment is unknown
        return {}
    return counts
