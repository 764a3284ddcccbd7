"""What the measure commands run: a :class:`Target` (a model file on one EP with its
settings) and :class:`Knobs` (the settings a measurement overrides), made into an ORT
session by :func:`create_session`.

Plugin EPs (QNN, OpenVINO) are registered through :mod:`edgeort.providers` and attached
with ``add_provider_for_devices``; built-in EPs by name. An EP that is installed but has
no device here (OpenVINO on a non-Intel CPU) raises :class:`ProviderError` saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgeort import providers
from edgeort.choice import CPU_EP as CPU
from edgeort.errors import ProviderError, UsageError
from edgeort.session import LEVELS, MODES, SPINNING, session_options_for
from edgeort.session import RECORD_PLACEMENT as RECORD

__all__ = [
    "CPU",
    "LEVELS",
    "Knobs",
    "Target",
    "create_session",
    "ep_unavailable_reason",
    "placement",
]

log = logging.getLogger(__name__)

# Built-in EPs that place tensors in device memory (host<->device copies at the edges).
DEVICE_EPS = frozenset(
    {
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
        "DmlExecutionProvider",
        "ROCMExecutionProvider",
        "MIGraphXExecutionProvider",
        "CoreMLExecutionProvider",
        "NnapiExecutionProvider",
        "QNNExecutionProvider",
        "OpenVINOExecutionProvider",
    }
)


@dataclass(frozen=True, slots=True)
class Knobs:
    """Session settings a measurement sets; ``None`` keeps the target's own value."""

    threads: int | None = None  # intra-op threads
    inter_threads: int | None = None
    spinning: bool | None = None  # session.intra_op.allow_spinning
    graph_opt: str | None = None  # disable | basic | extended | all
    execution_mode: str | None = None  # sequential | parallel
    mem_pattern: bool | None = None
    cpu_arena: bool | None = None
    ep_options: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, str] = field(default_factory=dict)
    free_dims: Mapping[str, int] = field(default_factory=dict)  # named dim -> fixed value

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("threads", "inter_threads", "spinning", "graph_opt", "execution_mode")
            if getattr(self, k) is not None
        }
        if self.ep_options:
            out["ep_options"] = dict(self.ep_options)
        return out


@dataclass(frozen=True, slots=True)
class Target:
    """One model file on one EP, with the session settings it is meant to run with."""

    label: str
    model_path: Path
    ep: str = CPU
    provider_options: Mapping[str, str] = field(default_factory=dict)
    knobs: Knobs = field(default_factory=Knobs)  # the target's own settings
    simulated: bool = False
    sha256: str | None = None
    variant: Any = None  # edgeort.bundle.Variant for bundle targets
    profile: Any = None  # its edgeort.profiles.Profile, when known
    device: Any = None  # the DeviceInfo it was resolved on

    def with_knobs(self, knobs: Knobs) -> Target:
        return replace(self, knobs=knobs)


def _merge(base: Knobs, over: Knobs) -> Knobs:
    values = {
        name: getattr(over, name) if getattr(over, name) is not None else getattr(base, name)
        for name in (
            "threads",
            "inter_threads",
            "spinning",
            "graph_opt",
            "execution_mode",
            "mem_pattern",
            "cpu_arena",
        )
    }
    return Knobs(
        **values,
        ep_options={**base.ep_options, **over.ep_options},
        config={**base.config, **over.config},
        free_dims={**base.free_dims, **over.free_dims},
    )


def _apply(so: ort.SessionOptions, knobs: Knobs, *, config: bool = True) -> ort.SessionOptions:
    if knobs.graph_opt is not None:
        if knobs.graph_opt not in LEVELS:
            raise UsageError(
                f"graph optimisation level {knobs.graph_opt!r}: expected one of "
                f"{', '.join(LEVELS)}",
                option="graph_opt",
            )
        so.graph_optimization_level = LEVELS[knobs.graph_opt]
    if knobs.execution_mode is not None:
        so.execution_mode = MODES[knobs.execution_mode]
    if knobs.threads is not None:
        so.intra_op_num_threads = int(knobs.threads)
    if knobs.inter_threads is not None:
        so.inter_op_num_threads = int(knobs.inter_threads)
    if knobs.mem_pattern is not None:
        so.enable_mem_pattern = knobs.mem_pattern
    if knobs.cpu_arena is not None:
        so.enable_cpu_mem_arena = knobs.cpu_arena
    for dim, size in knobs.free_dims.items():
        so.add_free_dimension_override_by_name(dim, int(size))
    if config:
        for key, value in _config_entries(knobs).items():
            so.add_session_config_entry(key, value)
    return so


def _config_entries(knobs: Knobs) -> dict[str, str]:
    entries = {str(k): str(v) for k, v in knobs.config.items()}
    if knobs.spinning is not None:
        entries[SPINNING] = "1" if knobs.spinning else "0"
    return entries


def session_options(target: Target, knobs: Knobs) -> ort.SessionOptions:
    """SessionOptions for ``target``: a bundle variant starts from what ``edgeort.load``
    would use (:func:`edgeort.session.session_options_for`), a plain model from ORT's
    defaults; ``knobs`` go on top."""
    if target.variant is None or target.device is None:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        return _apply(so, knobs)
    so = session_options_for(
        target.variant,
        target.profile,
        target.device,
        threads=knobs.threads,
        overrides=_config_entries(knobs),
    )
    return _apply(so, knobs, config=False)


def ep_unavailable_reason(ep: str) -> str | None:
    """None if ``ep`` can create a session here, else why not (installed, no device...)."""
    if ep in ort.get_available_providers() and ep not in providers.KNOWN_PLUGINS:
        return None
    if ep in providers.KNOWN_PLUGINS or any(p.ep_name == ep for p in providers.discover_plugins()):
        if not providers.ensure_registered(ep):
            return providers.registration_error(ep) or f"{ep} could not be registered"
        if not providers.ep_devices(ep):
            return f"{ep} is installed and registered but reports no device on this machine"
        return None
    return f"{ep} is not available in this onnxruntime build ({providers.plugin_install_hint(ep)})"


def _config_value(so: ort.SessionOptions, key: str) -> str | None:
    try:
        return str(so.get_session_config_entry(key))
    except Exception:  # ORT raises when the key is not set
        return None


def create_session(
    target: Target,
    knobs: Knobs | None = None,
    *,
    profile_prefix: str | None = None,
    record_placement: bool = False,
) -> ort.InferenceSession:
    """An ORT session for ``target`` with ``knobs`` over the target's own settings."""
    merged = _merge(target.knobs, knobs or Knobs())
    so = session_options(target, merged)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if record_placement and _config_value(so, RECORD) != "1":
        so.add_session_config_entry(RECORD, "1")
    options = {**target.provider_options, **merged.ep_options}
    provider_list: list[Any] | None = None
    if target.ep == CPU:
        provider_list = [CPU]
    else:
        why = ep_unavailable_reason(target.ep)
        if why is not None:
            raise ProviderError(f"{target.label}: {why}", provider=target.ep)
        devices = providers.ep_devices(target.ep)
        want = str(getattr(target.variant, "device", "") or "")
        if want:
            devices = [d for d in devices if str(d.device.type).rsplit(".", 1)[-1].lower() == want]
        if devices:
            so.add_provider_for_devices(devices, {k: str(v) for k, v in options.items()})
        elif target.ep in providers.KNOWN_PLUGINS:
            raise ProviderError(
                f"{target.label}: {target.ep} has no {want or 'usable'} device here",
                provider=target.ep,
            )
        else:
            provider_list = [(target.ep, dict(options)), CPU]
    try:
        return ort.InferenceSession(
            str(target.model_path), so, providers=provider_list, enable_fallback=0
        )
    except Exception as exc:  # ORT raises its own exception types
        raise ProviderError(
            f"{target.model_path}: cannot create a {target.ep} session: {exc}",
            provider=target.ep,
            path=target.model_path,
        ) from exc


def placement(session: ort.InferenceSession) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """``[(ep, [(node name, op type, domain), ...]), ...]``: one entry per subgraph ORT
    assigned (a compiling EP gets one per partition; the CPU EP one per node). The
    session must be created with ``record_placement=True``."""
    return [
        (
            str(sub.ep_name),
            [(str(n.name), str(n.op_type), str(n.domain)) for n in sub.get_nodes()],
        )
        for sub in session.get_provider_graph_assignment_info()
    ]
