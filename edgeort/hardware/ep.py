"""The EP module: can this execution provider run here, and how is its session opened.

Everything edgeort knows about execution providers on a device is decided here, for the
runtime (:func:`edgeort.load`), profile matching (:mod:`edgeort.profiles.match`), the
packager's verification runs (:mod:`edgeort.pack.evaluate`) and the measure commands:

* **availability on a described device** (a :class:`~edgeort.hardware.device.DeviceInfo`,
  probed, captured or faked): :func:`ep_unavailable` (a bundle variant) and
  :func:`check_profile_ep` (a profile);
* **availability in this process** (registering plugin EPs as needed):
  :func:`ep_unavailable_reason` (an EP name) and :func:`choose_ep` (where a profile's
  variant is verified at build time);
* **simulation**: an EP runs only in simulation on the arches its profiles list in
  ``runtime.simulated_on`` (:func:`simulated_on`; profiles are the only source);
* **sessions**: session options (:func:`session_options_for`, :class:`Knobs`) and
  ``InferenceSession`` creation -- :func:`create_session` for a bundle variant (plugin EPs
  through ``add_provider_for_devices``, built-in ones through ``providers=[(ep, options),
  CPU]``, ``enable_fallback=0``, every failure a :class:`~edgeort.errors.ProviderError`
  naming the variant), :func:`open_measure_session` for a measured model file,
  :func:`make_session` for a build-time verification run, :func:`cpu_session` for a
  plain CPU session.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import onnxruntime as ort

from edgeort._log import INFO, get_logger
from edgeort.errors import CacheError, EdgeortError, PackageError, ProviderError, UsageError
from edgeort.hardware._basics import CPU_EP, hardware_type, this_arch

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import Variant
    from edgeort.hardware._ep_records import EpChoice, Knobs
    from edgeort.hardware.device import DeviceInfo
    from edgeort.profiles import Profile

__all__ = [
    "CLASSIC_BUILDS",
    "CPU_EP",
    "LEVELS",
    "MODES",
    "RECORD_PLACEMENT",
    "SPINNING",
    "ClassicBuild",
    "EpChoice",
    "Knobs",
    "SessionPlan",
    "alternative_hint",
    "builtin_device_ids",
    "builtin_device_types",
    "builtin_provider_options",
    "builtin_route",
    "check_profile_ep",
    "choose_ep",
    "cpu_session",
    "create_session",
    "ep_cache_dir",
    "ep_node_counts",
    "ep_unavailable",
    "ep_unavailable_reason",
    "expand_options",
    "is_plugin_ep",
    "is_version_error",
    "make_session",
    "merge_knobs",
    "open_measure_session",
    "open_session",
    "placement",
    "session_options_for",
    "session_plan",
    "simulated_here",
    "simulated_on",
    "simulator_options",
    "support_note",
]


def __getattr__(name: str) -> Any:
    """:class:`EpChoice` (build-time verification) and :class:`Knobs` (measurements) are
    defined in :mod:`edgeort.hardware._ep_records`, imported on first use: opening a
    bundle's session needs neither."""
    if name in {"EpChoice", "Knobs"}:
        from edgeort.hardware import _ep_records

        return getattr(_ep_records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

log = get_logger(__name__)


# ---- plugins, device types, simulation -----------------------------------------------


def _plugins() -> Any:
    from edgeort.hardware import plugins

    return plugins


def is_plugin_ep(ep: str, device: DeviceInfo | None = None) -> bool:
    """Whether ``ep`` comes from a plugin package: a known plugin, one ``device`` lists,
    or (without a device) one installed in this environment."""
    plugins = _plugins()
    if ep in plugins.KNOWN_PLUGINS:
        return True
    if device is not None:
        return any(p.ep_name == ep for p in device.plugin_eps)
    return any(p.ep_name == ep for p in plugins.discover_plugins())


def _of_type(devices: Sequence[Any], want: str) -> list[Any]:
    return [d for d in devices if hardware_type(d.device) == want] if want else list(devices)


def simulated_on(ep: str, profiles: Iterable[Profile] | None = None) -> frozenset[str]:
    """The arches where ``ep`` runs only in simulation, as the profiles for ``ep`` say
    (``runtime.simulated_on``; default: the built-in profiles)."""
    if profiles is None:
        from edgeort.profiles import builtin_profiles

        profiles = builtin_profiles()
    return frozenset(a for p in profiles if p.runtime.ep == ep for a in p.runtime.simulated_on)


def simulated_here(ep: str, profile: Profile | None = None) -> bool:
    """Whether ``ep`` runs only in simulation on this machine (``profile``'s
    ``runtime.simulated_on`` when given, else every built-in profile of ``ep``)."""
    arches = profile.runtime.simulated_on if profile is not None else simulated_on(ep)
    return this_arch() in arches


# ---- availability on a described device ---------------------------------------------


def _built_in(ep: str, device: DeviceInfo) -> bool:
    """A plugin EP's name compiled into the device's onnxruntime build instead (the
    classic onnxruntime-openvino wheel), with no plugin of that name installed."""
    return ep in device.ort_build_providers and not any(p.ep_name == ep for p in device.plugin_eps)


def ep_unavailable(variant: Variant, device: DeviceInfo) -> str | None:
    """Why ``variant``'s EP cannot run on ``device``; None when it can. A plugin EP's name
    compiled into the onnxruntime build (onnxruntime-openvino) counts as available."""
    ep, want = variant.ep, variant.device
    if ep == CPU_EP:
        return None
    types = device.ep_device_types(ep)
    if is_plugin_ep(ep, device):
        if not types:
            if _built_in(ep, device):
                return None  # compiled into this build (onnxruntime-openvino): runs by name
            plugin = next((p for p in device.plugin_eps if p.ep_name == ep), None)
            if plugin is None:
                hint = _plugins().plugin_install_hint(ep, variant.ep_package)
                return f"{ep} is not installed: {hint}"
            if not plugin.registered:
                return f"{ep} ({plugin.package}) is installed but not registered: {plugin.error}"
            return (
                f"{ep} ({plugin.package} {plugin.version}) is installed and registered but "
                f"reports no device here (onnxruntime lists no OrtEpDevice for it on "
                f"{device.cpu_vendor or 'this'} {device.arch})"
            )
    elif ep not in device.available_eps:
        have = ", ".join(sorted(device.available_eps))
        hint = _plugins().package_hint(variant.ep_package or "onnxruntime")
        return f"{ep} is not in this onnxruntime build (it has {have}): {hint}"
    if want and types and want not in types:
        return f"{ep} has only {'/'.join(sorted(types))} devices here; the variant needs {want}"
    return None


def check_profile_ep(
    profile: Profile, device: DeviceInfo, simulated: bool, ok: list[str], bad: list[str]
) -> None:
    """Whether ``profile``'s EP runs on ``device`` (ORT version, built in or plugin,
    registered, devices of the wanted type): reasons appended to ``ok`` / ``bad``."""
    from edgeort._versions import version_tuple

    rt = profile.runtime
    if device.ort_version is None:
        bad.append(f"onnxruntime is not installed (this profile needs pip package {rt.package})")
        return
    if version_tuple(device.ort_version) < version_tuple(rt.min_ort):
        bad.append(f"onnxruntime {device.ort_version} is older than runtime.min_ort {rt.min_ort}")
    plugin = next((p for p in device.plugin_eps if p.ep_name == rt.ep), None)
    types = device.ep_device_types(rt.ep)
    if rt.ep in device.ort_build_providers:
        ok.append(f"{rt.ep} built into onnxruntime {device.ort_version}")
    elif plugin is None:
        bad.append(_not_installed(profile))
        return
    elif not plugin.registered:
        bad.append(
            f"{rt.ep} is installed ({plugin.package} {plugin.version or '?'}) but not "
            f"registered: {plugin.error or 'registration was not attempted'}"
        )
        return
    elif not types:
        from edgeort.hardware._ort import no_device_why

        why = no_device_why(rt.ep, device.cpu_vendor, device.accelerators)
        bad.append(f"{rt.ep} is installed and registered but reports no device here: {why}")
        return
    elif not simulated:
        ok.append(f"{rt.ep} registered ({plugin.package} {plugin.version or '?'})")
    _check_device_type(profile, types, device, simulated, ok, bad)


def _check_device_type(
    profile: Profile,
    types: frozenset[str],
    device: DeviceInfo,
    simulated: bool,
    ok: list[str],
    bad: list[str],
) -> None:
    rt = profile.runtime
    if simulated:
        backend = "HTP" if rt.ep == "QNNExecutionProvider" else (rt.device or "device")
        ok.append(f"{rt.ep} registered (simulated {backend} on {device.arch})")
    elif rt.device and types and rt.device not in types:
        bad.append(
            f"{rt.ep} has devices of type {', '.join(sorted(types))}; profile wants {rt.device}"
        )
    elif rt.device and rt.device in types:
        ok.append(f"{rt.ep} has a {rt.device} device")


def _not_installed(profile: Profile) -> str:
    plugins = _plugins()
    rt = profile.runtime
    if rt.plugin_module or rt.ep in plugins.KNOWN_PLUGINS:
        return f"{rt.ep} not installed: {plugins.plugin_install_hint(rt.ep, rt.package)}"
    if rt.package == "onnxruntime":
        where = "/".join(profile.match.os or ("other platforms",))
        arch = "/".join(profile.match.arch)
        return f"{rt.ep} is not in this onnxruntime build; onnxruntime has it on {where} {arch}"
    hint = plugins.package_hint(rt.package)
    if hint.startswith("pip install"):
        return f"{rt.ep} is not in this onnxruntime build; it ships in pip package {rt.package}"
    return f"{rt.ep} is not in this onnxruntime build; {hint}"


# ---- availability in this process ---------------------------------------------------


def ep_unavailable_reason(ep: str) -> str | None:
    """None if ``ep`` can create a session here, else why not (installed, no device...).
    Registers the plugin that provides ``ep``."""
    plugins = _plugins()
    if ep in ort.get_available_providers() and ep not in plugins.KNOWN_PLUGINS:
        return None
    if builtin_route(ep):  # onnxruntime-openvino: compiled in, by name
        return None
    if ep in plugins.KNOWN_PLUGINS or any(p.ep_name == ep for p in plugins.discover_plugins()):
        if not plugins.ensure_registered(ep):
            return plugins.registration_error(ep) or f"{ep} could not be registered"
        if not plugins.ep_devices(ep):
            return f"{ep} is installed and registered but reports no device on this machine"
        return None
    return f"{ep} is not available in this onnxruntime build ({plugins.plugin_install_hint(ep)})"


def _options(profile: Profile) -> dict[str, str]:
    opts = {}
    for key, value in profile.runtime.provider_options.items():
        if "{" in str(value):
            log.info("verify: provider option %s=%s skipped (placeholder)", key, value)
            continue
        opts[str(key)] = str(value)
    return opts


def simulator_options(ep: str, profile: Profile | None = None) -> dict[str, str]:
    """``runtime.simulator_options`` for ``ep`` where it runs as a simulator here (the
    profile's, else those of every profile of ``ep``, built-in and user, as
    :func:`edgeort.profiles.load_profiles` gives them); ``{}`` elsewhere, and always for
    the CPU EP (it takes no provider options)."""
    if ep == CPU_EP or not simulated_here(ep, profile):
        return {}
    if profile is not None:
        return {str(k): str(v) for k, v in profile.runtime.simulator_options.items()}
    from edgeort.profiles import load_profiles

    found: dict[str, str] = {}
    for p in load_profiles():
        if p.runtime.ep == ep:
            found.update({str(k): str(v) for k, v in p.runtime.simulator_options.items()})
    return found


def choose_ep(profile: Profile) -> EpChoice:
    """Pick the EP that verifies ``profile``'s variant on this machine."""
    from edgeort.hardware._ep_records import EpChoice

    ep = profile.runtime.ep
    if ep == CPU_EP:
        return EpChoice(ep, CPU_EP)
    simulated = simulated_here(ep, profile)
    if builtin_route(ep):  # the onnxruntime-openvino build: the EP by name, no OrtEpDevice
        options = builtin_provider_options(ep, profile.runtime.device, _options(profile))
        return EpChoice(ep, ep, "", simulated, (), options)
    if profile.runtime.plugin_module:
        providers = _plugins()
        try:
            registered = providers.ensure_registered(ep)
        except Exception as exc:  # registration failures are a recorded reason here
            registered, why = False, f"{ep} failed to register: {exc}"
        else:
            why = f"{ep} is not installed (pip install {profile.runtime.package})"
        if not registered:
            return EpChoice(ep, CPU_EP, why)
        devices = list(providers.ep_devices(ep))
        wanted_type = profile.runtime.device.lower()
        if not simulated:
            devices = _of_type(devices, wanted_type)
        if not devices:
            where = f" of type {wanted_type}" if wanted_type and not simulated else ""
            return EpChoice(ep, CPU_EP, f"{ep} is installed but reports no device{where} here")
        options = {**_options(profile), **simulator_options(ep, profile)}
        return EpChoice(ep, ep, "", simulated, tuple(devices), options)
    if ep in ort.get_available_providers():
        options = {**_options(profile), **simulator_options(ep, profile)}
        return EpChoice(ep, ep, "", simulated, (), options)
    return EpChoice(
        ep,
        CPU_EP,
        f"{ep} is not in this onnxruntime build "
        f"({_plugins().package_hint(profile.runtime.package)})",
    )


# ---- session options -----------------------------------------------------------------


def _threads(profile: Profile | None, device: DeviceInfo, threads: int | None) -> int:
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
    variant: Variant,
    profile: Profile | None,
    device: DeviceInfo,
    strict: bool,
    overrides: Mapping[str, Any],
) -> dict[str, str]:
    """Session config entries: defaults < profile < variant < overrides (``{cache_dir}``
    not yet expanded: :func:`open_session` does that)."""
    on_battery = device.battery is not None and device.battery.plugged is False
    config = {SPINNING: "0" if on_battery else "1", RECORD_PLACEMENT: "1"}
    if profile is not None:
        config.update(profile.session.config)
    config.update(variant.session_options)
    config.update({str(k): str(v) for k, v in overrides.items()})
    if strict and variant.ep != CPU_EP:
        config[NO_CPU_FALLBACK] = "1"  # ORT refuses it together with an explicit CPU EP
    return config


class SessionPlan(TypedDict):
    """Everything :func:`create_session` resolves from a variant, its profile, the device
    and the tuned settings before ORT is called: plain JSON, so :func:`edgeort.load` can
    keep it (:mod:`edgeort.runtime.plans`) and open the same session again with
    :func:`open_session` without probing or ranking. Values keep ``{cache_dir}``."""

    graph_optimization_level: str
    execution_mode: str
    intra_op_threads: int
    inter_op_threads: int
    config: dict[str, str]
    provider_options: dict[str, str]
    strict: bool


def session_plan(
    variant: Variant,
    profile: Profile | None,
    device: DeviceInfo,
    *,
    threads: int | None = None,
    strict: bool = False,
    overrides: Mapping[str, Any] | None = None,
    provider_options: Mapping[str, str] | None = None,
    graph_optimization_level: str | None = None,
    execution_mode: str | None = None,
) -> SessionPlan:
    """The :class:`SessionPlan` for ``variant`` from its profile and its recorded options.

    Threads: ``threads=`` or :func:`edgeort.profiles.match.intra_op_threads`; spinning on unless
    the device runs on battery; optimisation level and execution mode from the
    arguments (e.g. tuned) or else the profile; config entries from the profile, then
    the variant's ``executor_info`` session options, then ``overrides`` (e.g. tuned
    settings). ``strict`` sets ``session.disable_cpu_ep_fallback=1`` for non-CPU EPs.
    Provider options: the variant's, the simulator's (:func:`simulator_options`), then
    ``provider_options``.
    """
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
    intra = _threads(profile, device, threads)
    inter = settings.inter_op_threads if settings is not None else 1
    simulator = simulator_options(variant.ep, profile)
    return SessionPlan(
        graph_optimization_level=level,
        execution_mode=mode,
        intra_op_threads=intra,
        # ORT runs ORT_PARALLEL sequentially when inter_op_num_threads is 1: let it choose.
        inter_op_threads=0 if mode == "parallel" and inter == 1 else inter,
        config=_config(variant, profile, device, strict, overrides or {}),
        provider_options={
            **variant.provider_options,
            **simulator,
            **{str(k): str(v) for k, v in (provider_options or {}).items()},
        },
        strict=strict,
    )


def _planned_options(plan: SessionPlan, variant: Variant) -> ort.SessionOptions:
    so = ort.SessionOptions()
    # ORT's own error lines only with logging at INFO (edgeort -v): a failing run() is
    # reported once, as the EdgeortError that carries ORT's message.
    so.log_severity_level = 3 if log.isEnabledFor(INFO) else 4
    so.graph_optimization_level = LEVELS[plan["graph_optimization_level"]]
    so.execution_mode = MODES[plan["execution_mode"]]
    so.intra_op_num_threads = plan["intra_op_threads"]
    so.inter_op_num_threads = plan["inter_op_threads"]
    for key, value in expand_options(plan["config"], variant).items():
        try:
            so.add_session_config_entry(key, value)
        except Exception as exc:
            raise UsageError(f"session option {key}={value!r} refused by ORT: {exc}") from exc
    return so


def session_options_for(
    variant: Variant,
    profile: Profile | None,
    device: DeviceInfo,
    *,
    threads: int | None = None,
    strict: bool = False,
    overrides: Mapping[str, Any] | None = None,
    graph_optimization_level: str | None = None,
    execution_mode: str | None = None,
) -> ort.SessionOptions:
    """``SessionOptions`` for ``variant`` from its profile and its recorded options, as
    :func:`session_plan` resolves them. The EP itself is attached by :func:`create_session`.
    """
    plan = session_plan(
        variant,
        profile,
        device,
        threads=threads,
        strict=strict,
        overrides=overrides,
        graph_optimization_level=graph_optimization_level,
        execution_mode=execution_mode,
    )
    return _planned_options(plan, variant)


CACHE_PLACEHOLDER = "{cache_dir}"


def ep_cache_dir(variant: Variant) -> Path:
    """The per-variant directory that ``{cache_dir}`` in an EP option stands for."""
    from edgeort._dirs import cache_dir

    entry = variant.file(variant.model_file)
    digest = entry.sha256[:16] if entry is not None else "nodigest"
    return cache_dir() / "ep" / f"{digest}-{variant.name}"


def expand_options(options: Mapping[str, str], variant: Variant) -> dict[str, str]:
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


def merge_knobs(base: Knobs, over: Knobs) -> Knobs:
    """``over`` on top of ``base`` (its ``None`` fields keep ``base``'s values)."""
    from edgeort.hardware._ep_records import Knobs

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


def _verify_options(profile: Profile | None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    # A failing verification run is reported once, as the PackageError naming the sample
    # and carrying ORT's message; ORT's own error lines only with edgeort -v.
    so.log_severity_level = 3 if log.isEnabledFor(INFO) else 4
    so.add_session_config_entry(RECORD_PLACEMENT, "1")
    if profile is not None:
        so.graph_optimization_level = LEVELS.get(
            profile.session.graph_optimization_level, ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        for key, value in profile.session.config.items():
            if not key.startswith("ep.context") and "{" not in str(value):
                so.add_session_config_entry(key, str(value))
    return so


# ---- opening sessions ----------------------------------------------------------------


def _plugin_devices(variant: Variant) -> list[Any]:
    plugins = _plugins()
    devices = _of_type(plugins.ep_devices(variant.ep), variant.device)
    if not devices:
        why = plugins.registration_error(variant.ep) or "onnxruntime lists no OrtEpDevice for it"
        raise ProviderError(f"{variant.ep} has no usable device here: {why}", provider=variant.ep)
    return devices


def _attach_ep(
    so: ort.SessionOptions, variant: Variant, options: Mapping[str, str], strict: bool
) -> list[Any] | None:
    """Add the variant's EP; returns ``providers=`` for InferenceSession (None: on ``so``)."""
    ep = variant.ep
    if ep == CPU_EP:
        return [CPU_EP]
    if builtin_route(ep):  # compiled into this build (onnxruntime-openvino): by name
        options = builtin_provider_options(ep, variant.device, options)
    elif is_plugin_ep(ep):
        so.add_provider_for_devices(_plugin_devices(variant), dict(options))
        return None
    elif ep not in ort.get_available_providers():
        from edgeort.hardware.plugins import package_hint

        have = ", ".join(ort.get_available_providers())
        hint = package_hint(variant.ep_package or "onnxruntime")
        raise ProviderError(
            f"{ep} is not in this onnxruntime build (it has {have}): {hint}",
            provider=ep,
        )
    return [(ep, dict(options))] if strict else [(ep, dict(options)), CPU_EP]


def _creation_error(exc: Exception, variant: Variant, strict: bool) -> EdgeortError:
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
    variant: Variant,
    profile: Profile | None,
    device: DeviceInfo,
    *,
    threads: int | None = None,
    strict: bool = False,
    overrides: Mapping[str, Any] | None = None,
    provider_options: Mapping[str, str] | None = None,
    graph_optimization_level: str | None = None,
    execution_mode: str | None = None,
) -> ort.InferenceSession:
    """An ``InferenceSession`` for ``variant`` whose (verified) model is ``model_path``:
    :func:`open_session` of its :func:`session_plan`."""
    plan = session_plan(
        variant,
        profile,
        device,
        threads=threads,
        strict=strict,
        overrides=overrides,
        provider_options=provider_options,
        graph_optimization_level=graph_optimization_level,
        execution_mode=execution_mode,
    )
    return open_session(model_path, variant, plan)


def open_session(
    model_path: str | Path, variant: Variant, plan: SessionPlan
) -> ort.InferenceSession:
    """Open ``plan`` (:func:`session_plan`) for ``variant`` whose model is ``model_path``.

    Plugin EPs go through ``add_provider_for_devices``; built-in ones through
    ``providers=[(ep, options), "CPUExecutionProvider"]`` (no CPU EP when ``strict``).
    Raises :class:`ProviderError` naming the variant and the reason.
    """
    so = _planned_options(plan, variant)
    options = expand_options(plan["provider_options"], variant)
    strict = plan["strict"]
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


def _measure_options(
    variant: Variant | None, profile: Profile | None, device: DeviceInfo | None, knobs: Knobs
) -> ort.SessionOptions:
    """SessionOptions for a measurement: a bundle variant starts from what
    ``edgeort.load`` would use (:func:`session_options_for`), a plain model from ORT's
    defaults; ``knobs`` go on top."""
    if variant is None or device is None:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        return _apply(so, knobs)
    # Level and mode go through the plan, as load() passes tuned ones: the inter-op
    # threads follow the mode there (parallel with inter_op_threads 1 would run
    # sequentially, so tune would time another session than the one load() opens).
    so = session_options_for(
        variant,
        profile,
        device,
        threads=knobs.threads,
        overrides=_config_entries(knobs),
        graph_optimization_level=knobs.graph_opt,
        execution_mode=knobs.execution_mode,
    )
    return _apply(so, knobs, config=False)


def _config_value(so: ort.SessionOptions, key: str) -> str | None:
    try:
        return str(so.get_session_config_entry(key))
    except Exception:  # ORT raises when the key is not set
        return None


def open_measure_session(
    model_path: Path,
    ep: str,
    knobs: Knobs,
    *,
    label: str,
    provider_options: Mapping[str, str] | None = None,
    variant: Variant | None = None,
    profile: Profile | None = None,
    device: DeviceInfo | None = None,
    profile_prefix: str | None = None,
    record_placement: bool = False,
) -> ort.InferenceSession:
    """An ORT session for a measured model file on ``ep`` with ``knobs`` (what the measure
    commands run); ``variant``/``profile``/``device`` when the file is a bundle variant."""
    so = _measure_options(variant, profile, device, knobs)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if record_placement and _config_value(so, RECORD_PLACEMENT) != "1":
        so.add_session_config_entry(RECORD_PLACEMENT, "1")
    options = {**simulator_options(ep, profile), **(provider_options or {}), **knobs.ep_options}
    provider_list: list[Any] | None = None
    if ep == CPU_EP:
        provider_list = [CPU_EP]
    else:
        why = ep_unavailable_reason(ep)
        if why is not None:
            raise ProviderError(f"{label}: {why}", provider=ep)
        want = str(getattr(variant, "device", "") or "")
        builtin = builtin_route(ep)
        devices = [] if builtin else _of_type(_plugins().ep_devices(ep), want)
        if builtin:  # onnxruntime-openvino: by name, the device as an option
            opts = builtin_provider_options(ep, want, {k: str(v) for k, v in options.items()})
            provider_list = [(ep, opts), CPU_EP]
        elif devices:
            so.add_provider_for_devices(devices, {k: str(v) for k, v in options.items()})
        elif ep in _plugins().KNOWN_PLUGINS:
            raise ProviderError(f"{label}: {ep} has no {want or 'usable'} device here", provider=ep)
        else:
            provider_list = [(ep, dict(options)), CPU_EP]
    try:
        return ort.InferenceSession(str(model_path), so, providers=provider_list, enable_fallback=0)
    except Exception as exc:  # ORT raises its own exception types
        raise ProviderError(
            f"{model_path}: cannot create a {ep} session: {exc}", provider=ep, path=model_path
        ) from exc


def make_session(
    model: Path,
    choice: EpChoice,
    profile: Profile | None = None,
    config: Mapping[str, str] | None = None,
) -> ort.InferenceSession:
    """A session for ``model`` on ``choice.on_ep`` (CPU EP as fallback for the rest);
    ``config``: session config entries the variant carries besides the profile's."""
    so = _verify_options(profile)
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    if str(model).endswith(".ort"):
        so.add_session_config_entry("session.load_model_format", "ORT")
    try:
        if choice.on_ep == CPU_EP:
            return ort.InferenceSession(str(model), so, providers=[CPU_EP])
        if choice.devices:
            so.add_provider_for_devices(list(choice.devices), dict(choice.provider_options))
            return ort.InferenceSession(str(model), so)
        providers = [(choice.on_ep, dict(choice.provider_options)), CPU_EP]
        return ort.InferenceSession(str(model), so, providers=providers)
    except Exception as exc:  # ORT raises its own types; name the EP and the file
        reason = ort_reason(exc)
        raise SessionRefused(
            f"{model.name}: cannot create a session on {choice.on_ep}: {reason[:400]} (the "
            "way out: another recipe or fixed --shape values for this target, or leave it "
            "out with --keep-going)",
            reason=reason,
            path=model,
        ) from None


class SessionRefused(PackageError):
    """ORT could not create a session for a variant on an EP; ``reason`` is ORT's text."""

    def __init__(self, message: str, *, reason: str, path: Path) -> None:
        super().__init__(message, path=path)
        self.reason = reason


def ort_reason(exc: BaseException) -> str:
    """ORT's message without its ``[ONNXRuntimeError] : N : CODE :`` prefix."""
    text = " ".join(str(exc).split())
    parts = text.split(" : ", 3)
    if text.startswith("[ONNXRuntimeError]") and len(parts) == 4:
        return f"{parts[2]}: {parts[3]}"
    return text


def cpu_session(
    model: str | Path,
    so: ort.SessionOptions | None = None,
    *,
    disabled_optimizers: Sequence[str] | None = None,
) -> ort.InferenceSession:
    """A plain CPU-EP session (checking, optimising or converting a model at build time).
    ORT's own exceptions propagate: each caller names its file and step."""
    kwargs: dict[str, Any] = {"providers": [CPU_EP]}
    if disabled_optimizers:
        kwargs["disabled_optimizers"] = list(disabled_optimizers)
    return ort.InferenceSession(str(model), so, **kwargs)


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


def ep_node_counts(session: ort.InferenceSession) -> dict[str, int]:
    """Nodes per EP as ORT assigned them; empty when this ORT cannot say (older than
    1.24, or the session was created without ``record_placement``)."""
    counts: dict[str, int] = {}
    try:
        for ep, nodes in placement(session):
            counts[ep] = counts.get(ep, 0) + len(nodes)
    except Exception:  # ORT raises its own types here
        return {}
    return counts


_VERSION_ERRORS = (
    "Unsupported model IR version",
    "official support for domain",
    "is under development and support for this is limited",
)


# ---- EPs compiled into the build under a plugin EP's name (the "classic" route) ---------
#
# The onnxruntime-openvino wheel is a whole ONNX Runtime with OpenVINOExecutionProvider
# built in: registered by name (get_available_providers()), no OrtEpDevice, no device
# discovery -- so it runs where the onnxruntime-ep-openvino plugin lists no device (AMD
# CPUs), where Intel does not officially support it. It replaces the onnxruntime module,
# so it lives in its own environment (edgeort runtimes add openvino).


@dataclass(frozen=True, slots=True)
class ClassicBuild:
    ep_name: str
    package: str  # the wheel that replaces onnxruntime
    runtime: str  # the built-in edgeort runtime recipe that installs it
    device_option: str  # provider option naming the device (CPU/GPU/NPU)
    vendor: str  # the only CPU vendor its maker supports


CLASSIC_BUILDS: dict[str, ClassicBuild] = {
    "OpenVINOExecutionProvider": ClassicBuild(
        "OpenVINOExecutionProvider", "onnxruntime-openvino", "openvino", "device_type", "intel"
    ),
}


def builtin_route(ep_name: str) -> bool:
    """``ep_name`` is compiled into this onnxruntime build and no installed plugin
    provides it: sessions name it in ``providers=``, with no ``OrtEpDevice``."""
    if ep_name not in CLASSIC_BUILDS:
        return False
    if ep_name not in ort.get_available_providers():
        return False
    from edgeort.hardware.plugins import plugin_installed

    return not plugin_installed(ep_name)


def builtin_device_ids() -> dict[str, tuple[str, ...]]:
    """Per built-in classic EP, the device ids it reports (OpenVINO: ``CPU``, ``GPU.0``...)."""
    out: dict[str, tuple[str, ...]] = {}
    if "OpenVINOExecutionProvider" in ort.get_available_providers():
        try:
            from onnxruntime.capi import _pybind_state as capi

            out["OpenVINOExecutionProvider"] = tuple(
                str(d) for d in capi.get_available_openvino_device_ids()
            )
        except Exception:  # the helper is private; absent: the devices are unknown
            out["OpenVINOExecutionProvider"] = ()
    return out


def builtin_device_types(ep_name: str) -> frozenset[str]:
    """``cpu``/``gpu``/``npu`` the classic build of ``ep_name`` reports here."""
    ids = builtin_device_ids().get(ep_name, ())
    return frozenset(i.split(".", 1)[0].lower() for i in ids)


def builtin_provider_options(
    ep_name: str, device: str, options: Mapping[str, str]
) -> dict[str, str]:
    """``options`` for the classic build: the device named explicitly (the plugin picks
    it from the ``OrtEpDevice``; the classic EP from ``device_type``)."""
    out = dict(options)
    build = CLASSIC_BUILDS.get(ep_name)
    if build is not None and device and build.device_option not in out:
        out[build.device_option] = device.upper()
    return out


def support_note(ep_name: str, cpu_vendor: str) -> str | None:
    """The label for a run its maker does not support: "OpenVINO on AMD, not officially
    supported by Intel"."""
    build = CLASSIC_BUILDS.get(ep_name)
    if build is None or not cpu_vendor or cpu_vendor == build.vendor:
        return None
    short = ep_name.removesuffix("ExecutionProvider")
    vendor = cpu_vendor.upper() if len(cpu_vendor) <= 3 else cpu_vendor.capitalize()
    return f"{short} on {vendor}, not officially supported by {build.vendor.capitalize()}"


def alternative_hint(ep_name: str) -> str | None:
    """What else runs ``ep_name`` when its plugin lists no device here."""
    build = CLASSIC_BUILDS.get(ep_name)
    if build is None:
        return None
    return (
        f"alternative: the classic {build.package} build (EP compiled in, no device "
        f"discovery) in its own environment: edgeort runtimes add {build.runtime}"
    )


def is_version_error(exc: BaseException) -> bool:
    """Whether ORT refused a model because of its IR version or opset."""
    text = str(exc)
    return any(marker in text for marker in _VERSION_ERRORS)
