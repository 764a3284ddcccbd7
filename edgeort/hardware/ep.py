"""One ONNX Runtime session for one bundle variant: options, EP attachment, errors.

:func:`session_options_for` turns a variant's recorded ``executor_info`` and its profile
into ``SessionOptions``; :func:`create_session` attaches the EP (plugin EPs through
``add_provider_for_devices``, built-in ones through ``providers=[(ep, options), CPU]``)
and creates the session with ``enable_fallback=0``, translating every failure into a
:class:`~edgeort.errors.ProviderError` that names the variant and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgeort.errors import CacheError, EdgeortError, ProviderError, UsageError
from edgeort.hardware.device import DeviceInfo

__all__ = [
    "CPU_EP",
    "create_session",
    "ep_cache_dir",
    "ep_unavailable",
    "expand_options",
    "is_version_error",
    "session_options_for",
]

CPU_EP = "CPUExecutionProvider"

LEVELS = {  # the one name -> ORT level table (profiles, tune, pack, doctor)
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "layout": ort.GraphOptimizationLevel.ORT_ENABLE_LAYOUT,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
MODES = {"sequential": ort.ExecutionMode.ORT_SEQUENTIAL, "parallel": ort.ExecutionMode.ORT_PARALLEL}
RECORD_PLACEMENT = "session.record_ep_graph_assignment_info"
NO_CPU_FALLBACK = "session.disable_cpu_ep_fallback"
SPINNING = "session.intra_op.allow_spinning"
_CPU_FALLBACK_REFUSED = "fallback to CPU EP has been explicitly disabled"


def _threads(profile: Any, device: DeviceInfo, threads: int | None) -> int:
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise UsageError(
                f"threads must be an integer >= 0 (0 = ONNX Runtime's default), got {threads!r}",
                option="threads",
            )
        return threads
    if profile is None:
        return device.threads_default
    from edgeort.profiles.match import intra_op_threads

    return int(intra_op_threads(profile, device))


def _config(
    variant: Any, profile: Any, device: DeviceInfo, strict: bool, overrides: Mapping[str, Any]
) -> dict[str, str]:
    """Session config entries: defaults < profile < variant < overrides."""
    on_battery = device.battery is not None and device.battery.plugged is False
    config = {SPINNING: "0" if on_battery else "1", RECORD_PLACEMENT: "1"}
    if profile is not None:
        config.update(profile.session.config)
    config.update(variant.session_options)
    config.update({str(k): str(v) for k, v in overrides.items()})
    config = expand_options(config, variant)
    if strict and variant.ep != CPU_EP:
        config[NO_CPU_FALLBACK] = "1"  # ORT refuses it together with an explicit CPU EP
    return config


def session_options_for(
    variant: Any,
    profile: Any,
    device: DeviceInfo,
    *,
    threads: int | None = None,
    strict: bool = False,
    overrides: Mapping[str, Any] | None = None,
    graph_optimization_level: str | None = None,
    execution_mode: str | None = None,
) -> ort.SessionOptions:
    """``SessionOptions`` for ``variant`` from its profile and its recorded options.

    Threads: ``threads=`` or :func:`edgeort.profiles.match.intra_op_threads`; spinning on unless
    the device runs on battery; optimisation level and execution mode from the
    arguments (e.g. tuned) or else the profile; config entries from the profile, then
    the variant's ``executor_info`` session options, then ``overrides`` (e.g. tuned
    settings). ``strict`` sets ``session.disable_cpu_ep_fallback=1`` for non-CPU EPs.
    The EP itself is attached by :func:`create_session`.
    """
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only; ORT's warnings go to its own logger
    settings = profile.session if profile is not None else None
    level = graph_optimization_level or (
        settings.graph_optimization_level if settings is not None else "all"
    )
    mode = execution_mode or (settings.execution_mode if settings is not None else "sequential")
    if level not in LEVELS or mode not in MODES:
        raise UsageError(
            f"unknown graph_optimization_level {level!r} or execution_mode {mode!r} "
            f"(levels: {', '.join(LEVELS)}; modes: {', '.join(MODES)})",
            option="session",
        )
    so.graph_optimization_level = LEVELS[level]
    so.execution_mode = MODES[mode]
    so.intra_op_num_threads = _threads(profile, device, threads)
    inter = settings.inter_op_threads if settings is not None else 1
    # ORT runs ORT_PARALLEL sequentially when inter_op_num_threads is 1: let it choose.
    so.inter_op_num_threads = 0 if mode == "parallel" and inter == 1 else inter
    for key, value in _config(variant, profile, device, strict, overrides or {}).items():
        try:
            so.add_session_config_entry(key, value)
        except Exception as exc:
            raise UsageError(f"session option {key}={value!r} refused by ORT: {exc}") from exc
    return so


CACHE_PLACEHOLDER = "{cache_dir}"


def ep_cache_dir(variant: Any) -> Path:
    """The per-variant directory that ``{cache_dir}`` in an EP option stands for."""
    from edgeort._dirs import cache_dir

    entry = variant.file(variant.model_file)
    digest = entry.sha256[:16] if entry is not None else "nodigest"
    return cache_dir() / "ep" / f"{digest}-{variant.name}"


def expand_options(options: Mapping[str, str], variant: Any) -> dict[str, str]:
    """Replace ``{cache_dir}`` in option values by :func:`ep_cache_dir` (created)."""
    out = {}
    for key, value in options.items():
        if CACHE_PLACEHOLDER in value:
            where = ep_cache_dir(variant)
            try:
                where.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CacheError(f"cannot create EP cache {where} for {key}: {exc}") from exc
            value = value.replace(CACHE_PLACEHOLDER, str(where))
        out[key] = value
    return out


def _plugin_devices(variant: Any) -> list[Any]:
    from edgeort.hardware.plugins import ep_devices, registration_error

    devices = ep_devices(variant.ep)
    if variant.device:
        devices = [
            d for d in devices if str(d.device.type).rsplit(".", 1)[-1].lower() == variant.device
        ]
    if not devices:
        why = registration_error(variant.ep) or "onnxruntime lists no OrtEpDevice for it"
        raise ProviderError(f"{variant.ep} has no usable device here: {why}", provider=variant.ep)
    return devices


def _attach_ep(
    so: ort.SessionOptions, variant: Any, options: Mapping[str, str], strict: bool
) -> list[Any] | None:
    """Add the variant's EP; returns ``providers=`` for InferenceSession (None: on ``so``)."""
    from edgeort.hardware.plugins import KNOWN_PLUGINS, discover_plugins

    ep = variant.ep
    if ep == CPU_EP:
        return [CPU_EP]
    if ep in KNOWN_PLUGINS or any(p.ep_name == ep for p in discover_plugins()):
        so.add_provider_for_devices(_plugin_devices(variant), dict(options))
        return None
    if ep not in ort.get_available_providers():
        have = ", ".join(ort.get_available_providers())
        raise ProviderError(
            f"{ep} is not in this onnxruntime build (it has {have}); install {variant.ep_package}",
            provider=ep,
        )
    return [(ep, dict(options))] if strict else [(ep, dict(options)), CPU_EP]


def _creation_error(exc: Exception, variant: Any, strict: bool) -> EdgeortError:
    where = f"variant {variant.name!r} ({variant.ep})"
    if strict and _CPU_FALLBACK_REFUSED in str(exc):
        return ProviderError(
            f"strict: {variant.ep} cannot take the whole graph of {where}; some nodes would "
            f"run on the CPU EP and session.disable_cpu_ep_fallback=1 forbids that ({exc})",
            provider=variant.ep,
        )
    if is_version_error(exc):
        return ProviderError(
            f"{where}: onnxruntime {ort.__version__} cannot load its IR/opset "
            f"(IR {variant.ir_version}, opsets {dict(variant.opsets)}): {exc}",
            provider=variant.ep,
        )
    return ProviderError(f"{where}: session creation failed: {exc}", provider=variant.ep)


def create_session(
    model_path: str | Path,
    variant: Any,
    profile: Any,
    device: DeviceInfo,
    *,
    threads: int | None = None,
    strict: bool = False,
    overrides: Mapping[str, Any] | None = None,
    provider_options: Mapping[str, str] | None = None,
    graph_optimization_level: str | None = None,
    execution_mode: str | None = None,
) -> ort.InferenceSession:
    """An ``InferenceSession`` for ``variant`` whose (verified) model is ``model_path``.

    Plugin EPs go through ``add_provider_for_devices``; built-in ones through
    ``providers=[(ep, options), "CPUExecutionProvider"]`` (no CPU EP when ``strict``).
    Raises :class:`ProviderError` naming the variant and the reason.
    """
    so = session_options_for(
        variant,
        profile,
        device,
        threads=threads,
        strict=strict,
        overrides=overrides,
        graph_optimization_level=graph_optimization_level,
        execution_mode=execution_mode,
    )
    options = expand_options({**variant.provider_options, **(provider_options or {})}, variant)
    providers = _attach_ep(so, variant, options, strict)
    try:
        session = ort.InferenceSession(
            str(model_path), sess_options=so, providers=providers, enable_fallback=0
        )
    except Exception as exc:
        raise _creation_error(exc, variant, strict) from exc
    got = session.get_providers()
    if not got or got[0] != variant.ep:
        raise ProviderError(
            f"variant {variant.name!r}: onnxruntime created the session on {got}, not {variant.ep}",
            provider=variant.ep,
        )
    return session


def _is_plugin(ep: str, device: DeviceInfo) -> bool:
    from edgeort.hardware.plugins import KNOWN_PLUGINS

    return ep in KNOWN_PLUGINS or any(p.ep_name == ep for p in device.plugin_eps)


def ep_unavailable(variant: Any, device: DeviceInfo) -> str | None:
    """Why ``variant``'s EP cannot run on ``device``; None when it can."""
    ep, want = variant.ep, variant.device
    types = device.ep_device_types(ep)
    if ep == CPU_EP:
        return None
    if _is_plugin(ep, device):
        plugin = next((p for p in device.plugin_eps if p.ep_name == ep), None)
        if plugin is None and not types:
            from edgeort.hardware.plugins import plugin_install_hint

            return f"{ep} is not installed: {plugin_install_hint(ep, variant.ep_package)}"
        if plugin is not None and not plugin.registered and not types:
            return f"{ep} ({plugin.package}) is installed but not registered: {plugin.error}"
        if not types:
            assert plugin is not None
            return (
                f"{ep} ({plugin.package} {plugin.version}) is installed and registered but "
                f"reports no device here (onnxruntime lists no OrtEpDevice for it on "
                f"{device.cpu_vendor or 'this'} {device.arch})"
            )
    elif ep not in device.available_eps:
        have = ", ".join(sorted(device.available_eps))
        return (
            f"{ep} is not in this onnxruntime build (it has {have}); install {variant.ep_package}"
        )
    if want and types and want not in types:
        return f"{ep} has only {'/'.join(sorted(types))} devices here; the variant needs {want}"
    return None


_VERSION_ERRORS = (
    "Unsupported model IR version",
    "official support for domain",
    "is under development and support for this is limited",
)


def is_version_error(exc: BaseException) -> bool:
    """Whether ORT refused a model because of its IR version or opset."""
    text = str(exc)
    return any(marker in text for marker in _VERSION_ERRORS)
