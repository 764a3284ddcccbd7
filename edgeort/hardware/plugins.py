"""Execution providers: find plugin EP packages, register them once, list their devices.

A plugin EP is a pip distribution following ONNX Runtime's plugin packaging convention:
its name is ``onnxruntime-ep-<id>`` (or one of :data:`KNOWN_PLUGINS`, e.g. the older
``onnxruntime-qnn``) and its top-level module exposes ``get_library_path()`` and
``get_ep_names()`` / ``get_ep_name()``. Discovery reads distribution metadata only and
imports nothing but those plugin modules.

Registration (:func:`ensure_registered`) is idempotent, thread-safe and remembers both
success and failure; a missing plugin is ``False`` plus a reason
(:func:`registration_error`), never an exception.

Fakes for hardware this machine lacks (``FakeProviders``) live in :mod:`edgeort.testing`.
"""

from __future__ import annotations

import _thread  # threading.RLock is this C lock; threading itself is not needed here
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeort._log import get_logger
from edgeort.hardware.device import CPU_EP, EpDevice, PluginEp, hardware_type

if TYPE_CHECKING:  # pragma: no cover
    from importlib import metadata

    from edgeort.hardware._plugin_spec import _Spec

__all__ = [
    "KNOWN_PLUGINS",
    "KnownPlugin",
    "discover_plugins",
    "ensure_registered",
    "ep_devices",
    "list_ep_devices",
    "plugin_ep_names",
    "plugin_install_hint",
    "plugin_installed",
    "register_all",
    "register_for",
    "registration_error",
    "to_ep_device",
]

log = get_logger(__name__)

PLUGIN_PREFIX = "onnxruntime-ep-"


@dataclass(frozen=True, slots=True)
class KnownPlugin:
    ep_name: str
    package: str  # pip distribution
    module: str  # import name exposing get_library_path()
    extra: str  # edgeort extra that installs it: pip install edgeort[<extra>]


KNOWN_PLUGINS: dict[str, KnownPlugin] = {
    "OpenVINOExecutionProvider": KnownPlugin(
        "OpenVINOExecutionProvider",
        "onnxruntime-ep-openvino",
        "onnxruntime_ep_openvino",
        "openvino",
    ),
    "QNNExecutionProvider": KnownPlugin(
        "QNNExecutionProvider", "onnxruntime-qnn", "onnxruntime_qnn", "qnn"
    ),
}


_LOCK = _thread.RLock()
_SPECS: tuple[_Spec, ...] | None = None
_RESULTS: dict[str, bool] = {}  # registration name -> registered?
_ERRORS: dict[str, str] = {}  # ep name -> why it is not registered


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _dist_name(dist: metadata.Distribution) -> str:
    # PathDistribution knows its name from the .dist-info folder: no METADATA parse.
    cheap = getattr(dist, "_normalized_name", None)
    return _normalise(cheap if isinstance(cheap, str) else (dist.metadata["Name"] or ""))


def _plugin_dists() -> list[metadata.Distribution]:
    from importlib import metadata  # ~10 ms: only when plugins are looked up

    known = {_normalise(p.package) for p in KNOWN_PLUGINS.values()}
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = _dist_name(dist)
        if (name.startswith(PLUGIN_PREFIX) or name in known) and name not in found:
            found[name] = dist  # first on sys.path wins, like import
    return [found[n] for n in sorted(found)]


def _module_name(dist: metadata.Distribution, package: str) -> str:
    for plugin in KNOWN_PLUGINS.values():
        if _normalise(plugin.package) == package:
            return plugin.module
    top = (dist.read_text("top_level.txt") or "").split()
    return top[0] if top else package.replace("-", "_")


def _inspect(dist: metadata.Distribution) -> _Spec:
    from edgeort.hardware._plugin_spec import _Spec  # discovery only: not for a CPU load

    package = _dist_name(dist)
    module_name = _module_name(dist, package)
    known = [p.ep_name for p in KNOWN_PLUGINS.values() if _normalise(p.package) == package]
    try:
        module = importlib.import_module(module_name)
        names = _ep_names(module) or tuple(known)
        lib = str(module.get_library_path())
    except Exception as exc:  # a broken plugin must not break the probe
        why = f"import {module_name} / get_library_path() failed: {type(exc).__name__}: {exc}"
        return _Spec(package, module_name, dist.version, tuple(known), None, why)
    error = None if Path(lib).is_file() else f"library {lib} does not exist"
    return _Spec(package, module_name, dist.version, names, lib, error)


def _ep_names(module: Any) -> tuple[str, ...]:
    if hasattr(module, "get_ep_names"):
        return tuple(str(n) for n in module.get_ep_names())
    if hasattr(module, "get_ep_name"):
        return (str(module.get_ep_name()),)
    return ()


def _specs() -> tuple[_Spec, ...]:
    global _SPECS
    with _LOCK:
        if _SPECS is None:
            _SPECS = tuple(_inspect(d) for d in _plugin_dists())
        return _SPECS


def _forget_discovery() -> None:
    """Drop the cached discovery and failures (tests that install a plugin at run time)."""
    global _SPECS
    with _LOCK:
        _SPECS = None
        for name in [n for n, ok in _RESULTS.items() if not ok]:
            del _RESULTS[name]
        _ERRORS.clear()


def _spec_for(ep_name: str) -> _Spec | None:
    return next((s for s in _specs() if ep_name in s.ep_names), None)


def plugin_installed(ep_name: str) -> bool:
    """Whether an installed plugin distribution provides ``ep_name`` (metadata only)."""
    return _spec_for(ep_name) is not None


def discover_plugins() -> tuple[PluginEp, ...]:
    """Every installed plugin EP, one entry per EP name, with its registration state."""
    out = []
    with _LOCK:
        for spec in _specs():
            for ep in spec.ep_names or (f"<unknown EP of {spec.package}>",):
                registered = _RESULTS.get(_registration_name(spec), False)
                error = None if registered else _ERRORS.get(ep, spec.error)
                out.append(
                    PluginEp(
                        ep_name=ep,
                        package=spec.package,
                        module=spec.module,
                        library_path=spec.library_path,
                        version=spec.version,
                        registered=registered,
                        error=error,
                    )
                )
    return tuple(out)


def _registration_name(spec: _Spec) -> str:
    return spec.ep_names[0] if spec.ep_names else spec.package


def ensure_registered(ep_name: str) -> bool:
    """Register the plugin library providing ``ep_name`` with ONNX Runtime, once.

    Returns ``False`` (and records why, see :func:`registration_error`) when no installed
    plugin provides it or registration fails. Never raises for a missing plugin.
    """
    with _LOCK:
        spec = _spec_for(ep_name)
        if spec is None:
            _ERRORS.setdefault(
                ep_name, f"{ep_name} is not installed: {plugin_install_hint(ep_name)}"
            )
            return False
        key = _registration_name(spec)
        if key not in _RESULTS:
            _RESULTS[key] = _register(spec, key)
        return _RESULTS[key]


def _register(spec: _Spec, key: str) -> bool:
    def fail(why: str) -> bool:
        for ep in spec.ep_names:
            _ERRORS[ep] = why
        log.info("plugin EP %s not registered: %s", key, why)
        return False

    if spec.error or spec.library_path is None:
        return fail(f"{spec.package}: {spec.error}")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return fail(f"onnxruntime cannot be imported: {exc}")
    if any(d.ep_name in spec.ep_names for d in ort.get_ep_devices()):
        return True  # registered by someone else in this process
    try:
        ort.register_execution_provider_library(key, spec.library_path)
    except Exception as exc:  # ORT raises its own Fail/InvalidArgument types
        if "already registered" in str(exc):
            return True
        return fail(f"{spec.package}: registering {spec.library_path} failed: {exc}")
    log.debug("registered plugin EP library %s as %s", spec.library_path, key)
    return True


def registration_error(ep_name: str) -> str | None:
    """Why ``ep_name`` is not registered (after :func:`ensure_registered` said ``False``)."""
    with _LOCK:
        return _ERRORS.get(ep_name)


def register_for(ep_names: Iterable[str]) -> tuple[PluginEp, ...]:
    """Register only the installed plugins that provide ``ep_names``; returns their
    :func:`discover_plugins` entries. Looks nothing up when every name is the CPU EP
    (no package metadata read, no plugin imported)."""
    wanted = set(ep_names) - {CPU_EP}
    if not wanted:
        return ()
    for spec in _specs():
        hit = [ep for ep in spec.ep_names if ep in wanted]
        if hit:
            ensure_registered(hit[0])
    return tuple(p for p in discover_plugins() if p.ep_name in wanted)


def plugin_ep_names() -> frozenset[str]:
    """EP names known to come from plugins: :data:`KNOWN_PLUGINS`, plus every EP of the
    installed plugins once they have been looked up in this process."""
    with _LOCK:
        specs = _SPECS or ()
    return frozenset(KNOWN_PLUGINS).union(ep for s in specs for ep in s.ep_names)


def register_all() -> tuple[PluginEp, ...]:
    """Register every installed plugin EP; returns :func:`discover_plugins` afterwards."""
    for spec in _specs():
        for ep in spec.ep_names[:1]:
            ensure_registered(ep)
    return discover_plugins()


def ep_devices(ep_name: str) -> list[Any]:
    """The ``onnxruntime.OrtEpDevice`` objects of ``ep_name`` (registering its plugin)."""
    if _spec_for(ep_name) is not None:
        ensure_registered(ep_name)
    import onnxruntime as ort

    return [d for d in ort.get_ep_devices() if d.ep_name == ep_name]


def to_ep_device(dev: Any) -> EpDevice:
    """An ``onnxruntime.OrtEpDevice`` as a plain :class:`EpDevice` record."""
    hw = dev.device
    meta = {str(k): str(v) for k, v in dict(dev.ep_metadata).items()}
    meta.update({f"device.{k}": str(v) for k, v in dict(hw.metadata).items()})
    meta["device.device_id"] = str(hw.device_id)
    return EpDevice(
        ep_name=str(dev.ep_name),
        ep_vendor=str(dev.ep_vendor),
        device_type=hardware_type(hw),
        device_vendor=str(hw.vendor),
        vendor_id=int(hw.vendor_id),
        metadata=meta,
    )


def list_ep_devices() -> tuple[EpDevice, ...]:
    """Every ``onnxruntime.get_ep_devices()`` entry now (no registration done here)."""
    import onnxruntime as ort

    return tuple(to_ep_device(d) for d in ort.get_ep_devices())


# Packages that are no pip wheel: where the EP comes from instead (packaging/README.md).
NOT_ON_PIP = {
    "onnxruntime-android": (
        "no Python wheel exists: Android apps use the onnxruntime-android AAR "
        "(Maven com.microsoft.onnxruntime:onnxruntime-android)"
    ),
}


def package_hint(package: str) -> str:
    """How to get ``package`` onto a device: ``pip install X``, or what to use instead."""
    return NOT_ON_PIP.get(package, f"pip install {package}")


def plugin_install_hint(ep_name: str, package: str | None = None) -> str:
    """What to pip install for ``ep_name`` (``package``: the profile's, if it knows better)."""
    known = KNOWN_PLUGINS.get(ep_name)
    if known is not None:
        return f"pip install {known.package} (or: pip install edgeort[{known.extra}])"
    if package:
        return package_hint(package)
    return f"install the package that provides {ep_name} (plugin EPs: onnxruntime-ep-<name>)"
