"""``edgeort.load()``: open and verify a bundle, pick the variant, create the session.

Data flow: :func:`edgeort.bundle.open_bundle` (zip extraction, size-then-sha256 of every
file, closed file list, no links or path escapes -- all before ORT sees a byte) ->
the device (:func:`edgeort.probe.probe`, plugin EPs registered only for the EPs the bundle
uses) -> :func:`edgeort.choice.rank_variants` -> :func:`create_session` for each usable
variant in ranked order until one works. Every skipped or failed variant is logged once,
with its reason, and kept in :attr:`Model.reasons <edgeort.model.Model.reasons>`.

Sessions are created with ``enable_fallback=0``: ORT's Python wrapper would otherwise
print to stdout and silently re-create the session on the CPU EP (also during ``run``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgeort.choice import CPU_EP, Choice, Ranking, rank_variants, tuning_cache_path
from edgeort.device import DeviceInfo
from edgeort.errors import EdgeortError, NoVariantError, ProviderError, UsageError
from edgeort.model import Model
from edgeort.ortcompat import is_version_error

__all__ = [
    "Model",
    "create_session",
    "load",
    "rank_bundle",
    "session_options_for",
    "tuning_cache_path",
]

log = logging.getLogger(__name__)

LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
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
    from edgeort.select import intra_op_threads

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
) -> ort.SessionOptions:
    """``SessionOptions`` for ``variant`` from its profile and its recorded options.

    Threads: ``threads=`` or :func:`edgeort.select.intra_op_threads`; spinning on unless
    the device runs on battery; the profile's optimisation level and execution mode;
    config entries from the profile, then the variant's ``executor_info`` session
    options, then ``overrides`` (e.g. tuned settings). ``strict`` sets
    ``session.disable_cpu_ep_fallback=1`` for non-CPU EPs. The EP itself is attached by
    :func:`create_session`.
    """
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only; ORT's warnings go to its own logger
    settings = profile.session if profile is not None else None
    level = settings.graph_optimization_level if settings is not None else "all"
    mode = settings.execution_mode if settings is not None else "sequential"
    if level not in LEVELS or mode not in MODES:
        raise UsageError(
            f"profile {getattr(profile, 'name', '?')}: unknown graph_optimization_level "
            f"{level!r} or execution_mode {mode!r}",
            option="session",
        )
    so.graph_optimization_level = LEVELS[level]
    so.execution_mode = MODES[mode]
    so.intra_op_num_threads = _threads(profile, device, threads)
    so.inter_op_num_threads = settings.inter_op_threads if settings is not None else 1
    for key, value in _config(variant, profile, device, strict, overrides or {}).items():
        try:
            so.add_session_config_entry(key, value)
        except Exception as exc:
            raise UsageError(f"session option {key}={value!r} refused by ORT: {exc}") from exc
    return so


def _plugin_devices(variant: Any) -> list[Any]:
    from edgeort.providers import ep_devices, registration_error

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
    from edgeort.providers import KNOWN_PLUGINS, discover_plugins

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
) -> ort.InferenceSession:
    """An ``InferenceSession`` for ``variant`` whose (verified) model is ``model_path``.

    Plugin EPs go through ``add_provider_for_devices``; built-in ones through
    ``providers=[(ep, options), "CPUExecutionProvider"]`` (no CPU EP when ``strict``).
    Raises :class:`ProviderError` naming the variant and the reason.
    """
    so = session_options_for(
        variant, profile, device, threads=threads, strict=strict, overrides=overrides
    )
    options = {**variant.provider_options, **(provider_options or {})}
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


def _device_for(variants: Sequence[Any]) -> DeviceInfo:
    """probe() without registering every plugin: only those the bundle's variants use."""
    from edgeort.probe import probe
    from edgeort.providers import KNOWN_PLUGINS, discover_plugins, ensure_registered
    from edgeort.providers import list_ep_devices as listed

    device = probe(register_plugins=False)
    wanted = {v.ep for v in variants if v.ep != CPU_EP}
    installed = {p.ep_name for p in device.plugin_eps}
    plugins = sorted(ep for ep in wanted if ep in installed or ep in KNOWN_PLUGINS)
    if not plugins:
        return device
    for ep in plugins:
        ensure_registered(ep)
    return replace(device, plugin_eps=discover_plugins(), ep_devices=listed())


def rank_bundle(
    bundle: Any,
    *,
    profile: str | None = None,
    providers: Sequence[str] | None = None,
    device: DeviceInfo | None = None,
) -> Ranking:
    """The ranking :func:`load` would use for ``bundle`` here; creates no session."""
    if providers is not None and (
        isinstance(providers, str) or not all(isinstance(p, str) for p in providers)
    ):
        raise UsageError(
            f"providers must be a list of EP names, got {providers!r}", option="providers"
        )
    dev = device if device is not None else _device_for(bundle.variants)
    return rank_variants(bundle.variants, dev, profile=profile, providers=providers)


def _tuned(choice: Choice) -> tuple[dict[str, Any], dict[str, str], int | None]:
    tuned = dict(choice.tuned or {})
    session = tuned.get("session_options") or {}
    options = tuned.get("provider_options") or {}
    threads = tuned.get("intra_op_threads")
    threads = threads if isinstance(threads, int) and not isinstance(threads, bool) else None
    return dict(session), {str(k): str(v) for k, v in options.items()}, threads


def _try(bundle: Any, choice: Choice, device: DeviceInfo, strict: bool, threads: int | None) -> Any:
    overrides, options, tuned_threads = _tuned(choice)
    return create_session(
        bundle.model_path(choice.variant),
        choice.variant,
        choice.profile,
        device,
        threads=threads if threads is not None else tuned_threads,
        strict=strict,
        overrides=overrides,
        provider_options=options,
    )


def _no_variant(bundle: Any, reasons: dict[str, str], strict: bool) -> NoVariantError:
    lines = "\n".join(f"  - {name}: {why}" for name, why in reasons.items())
    mode = " (strict: no fallback)" if strict else ""
    return NoVariantError(
        f"no variant of {bundle.root} can run on this device{mode}:\n{lines}",
        reasons=reasons,
        path=bundle.root,
    )


def load(
    bundle: str | Path | Any,
    *,
    profile: str | None = None,
    providers: Sequence[str] | None = None,
    strict: bool = False,
    threads: int | None = None,
    device: DeviceInfo | None = None,
) -> Model:
    """Open ``bundle`` (directory, ``.zip`` or an open :class:`~edgeort.bundle.Bundle`),
    pick the best variant this device can run and return a ready :class:`Model`.

    ``profile``: a profile or variant name to use (only variants made for it are tried).
    ``providers``: EP names in preference order (only those EPs are tried).
    ``strict``: try only the best variant and refuse CPU fallback of single nodes.
    ``threads``: intra-op threads (default: the profile's rule). ``device``: a
    :class:`DeviceInfo` to rank against instead of probing (tests, captured devices).
    """
    from edgeort.bundle import open_bundle

    opened = open_bundle(bundle) if isinstance(bundle, (str, Path)) else bundle
    ranking = rank_bundle(opened, profile=profile, providers=providers, device=device)
    reasons = ranking.reasons()
    for choice in ranking.skipped:
        level = logging.DEBUG if choice.reason.startswith("not asked for") else logging.INFO
        log.log(level, "variant %s skipped: %s", choice.name, choice.reason)
    candidates = ranking.usable[:1] if strict else ranking.usable
    for choice in candidates:
        try:
            session = _try(opened, choice, ranking.device, strict, threads)
        except ProviderError as exc:
            if strict:
                raise
            reasons[choice.name] = f"failed: {exc}"
            log.warning("variant %s failed, trying the next: %s", choice.name, exc)
            continue
        reasons[choice.name] = f"picked: {choice.reason}"
        variant = choice.variant
        return Model(
            session,
            inputs=variant.inputs,
            outputs=variant.outputs,
            variant=variant,
            profile=choice.profile,
            reasons=reasons,
        )
    raise _no_variant(opened, reasons, strict)
