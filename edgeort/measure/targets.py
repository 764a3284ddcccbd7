"""What the measure commands run: :class:`Target` s (a model file on one EP with its
settings) and :class:`Knobs` (the settings a measurement overrides), made into an ORT
session by :func:`create_session`; and :func:`resolve`, which turns the ``MODEL|BUNDLE``
argument into targets.

A ``.onnx`` file is one target on the EP asked for (CPU by default). A bundle (directory
or ``.zip``, opened and verified by :func:`edgeort.bundle.open_bundle`) gives one target
per variant, each with the session settings :func:`edgeort.load` would use
(:func:`edgeort.hardware.ep.session_options_for`); variants whose EP cannot run here are
returned as *skipped*, with the reason.

Plugin EPs (QNN, OpenVINO) are registered through :mod:`edgeort.hardware.plugins` and
attached with ``add_provider_for_devices``; built-in EPs by name. An EP that is installed
but has no device here (OpenVINO on a non-Intel CPU) raises :class:`ProviderError` saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgeort._fs import sha256_file
from edgeort.errors import DataError, ModelError, ProviderError, UsageError
from edgeort.hardware import plugins as providers
from edgeort.hardware.ep import CPU_EP as CPU
from edgeort.hardware.ep import LEVELS, MODES, SPINNING, session_options_for
from edgeort.hardware.ep import RECORD_PLACEMENT as RECORD

__all__ = [
    "CPU",
    "LEVELS",
    "Knobs",
    "Resolved",
    "Target",
    "create_session",
    "ep_unavailable_reason",
    "is_model_file",
    "placement",
    "resolve",
    "source_model",
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
    would use (:func:`edgeort.hardware.ep.session_options_for`), a plain model from ORT's
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


# Provider options a plain model needs on EPs that cannot start without them.
DEFAULT_EP_OPTIONS: dict[str, dict[str, str]] = {"QNNExecutionProvider": {"backend_type": "htp"}}
SIMULATED_ON = {"QNNExecutionProvider": ("x86_64", "amd64")}


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a path stands for: runnable targets, skipped ones (name -> why), the bundle."""

    path: Path
    kind: str  # "model" | "bundle"
    targets: tuple[Target, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)
    bundle: Any = None
    device: Any = None

    @property
    def model_files(self) -> tuple[tuple[str, Path, str], ...]:
        """(label, model path, EP) of every target and skipped variant."""
        out = [(t.label, t.model_path, t.ep) for t in self.targets]
        if self.bundle is not None:
            runnable = {t.label for t in self.targets}
            out += [
                (v.name, self.bundle.model_path(v), v.ep)
                for v in self.bundle.variants
                if v.name not in runnable
            ]
        return tuple(out)


def is_model_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in {".onnx", ".ort"}


def _simulated(ep: str) -> bool:
    import platform

    return platform.machine().lower() in SIMULATED_ON.get(ep, ())


def _model_target(path: Path, ep: str | None, ep_options: Mapping[str, str]) -> Resolved:
    ep = ep or CPU
    options = {**DEFAULT_EP_OPTIONS.get(ep, {}), **ep_options}
    target = Target(
        label=path.name, model_path=path, ep=ep, provider_options=options, simulated=_simulated(ep)
    )
    skipped = {}
    if ep != CPU:
        why = ep_unavailable_reason(ep)
        if why is not None:
            skipped[path.name] = why
    return Resolved(path, "model", () if skipped else (target,), skipped)


def _probe() -> Any:
    from edgeort.hardware import probe

    return probe()


def _profile_of(variant: Any, profiles: Sequence[Any]) -> Any:
    return next((p for p in profiles if p.name == variant.profile), None)


def _bundle_targets(path: Path, variant: str | None, ep: str | None, device: Any) -> Resolved:
    from edgeort.bundle import open_bundle
    from edgeort.hardware.ep import ep_unavailable
    from edgeort.profiles import load_profiles

    bundle = open_bundle(path)
    variants = [bundle.variant(variant)] if variant else list(bundle.variants)
    if ep:
        variants = [v for v in variants if v.ep == ep]
        if not variants:
            raise UsageError(f"{path}: no variant runs on {ep}", option="--ep")
    device = device if device is not None else _probe()
    profiles = load_profiles()
    targets, skipped = [], {}
    for v in variants:
        why = ep_unavailable(v, device)
        if why is not None:
            skipped[v.name] = why
            continue
        entry = v.file(v.model_file)
        targets.append(
            Target(
                label=v.name,
                model_path=bundle.model_path(v),
                ep=v.ep,
                provider_options=dict(v.provider_options),
                simulated=_simulated(v.ep),
                sha256=entry.sha256 if entry is not None else None,
                variant=v,
                profile=_profile_of(v, profiles),
                device=device,
            )
        )
    return Resolved(path, "bundle", tuple(targets), skipped, bundle=bundle, device=device)


def resolve(
    path: str | Path,
    *,
    ep: str | None = None,
    ep_options: Mapping[str, str] | None = None,
    variant: str | None = None,
    device: Any = None,
) -> Resolved:
    """The targets ``path`` (model file or bundle) stands for."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file or bundle", path=path)
    if is_model_file(path):
        if variant:
            raise UsageError(f"--variant {variant}: {path} is a model file, not a bundle")
        return _model_target(path, ep, ep_options or {})
    if path.is_file() and path.suffix.lower() != ".zip":
        raise ModelError(
            f"{path}: expected an .onnx model, a bundle directory or a .zip", path=path
        )
    return _bundle_targets(path, variant, ep, device)


def source_model(resolved: Resolved, given: str | Path | None) -> Path | None:
    """The fp32 model ``--compare`` runs: ``given``, else the bundle's recorded
    ``source_model`` found beside the bundle (sha256-checked), else the model itself."""
    if given:
        p = Path(given)
        if not p.is_file():
            raise DataError(f"--compare {p}: no such model file", path=p)
        return p
    if resolved.kind == "model":
        return resolved.path
    meta = (resolved.bundle.metadata or {}).get("edgeort", resolved.bundle.metadata) or {}
    src = meta.get("source_model") if isinstance(meta, Mapping) else None
    if not isinstance(src, Mapping) or not src.get("name"):
        raise DataError(
            f"{resolved.path}: the bundle records no source model; pass --compare MODEL.onnx"
        )
    for folder in (resolved.bundle.source.parent, Path.cwd()):
        cand = folder / str(src["name"])
        if cand.is_file() and (not src.get("sha256") or sha256_file(cand) == src["sha256"]):
            return cand
    raise DataError(
        f"{resolved.path}: its source model {src['name']!r} (sha256 {src.get('sha256', '?')[:12]}) "
        f"is not beside the bundle; pass --compare MODEL.onnx"
    )
