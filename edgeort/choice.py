"""Which variant of a bundle this device should run: the ranking, with a reason for each.

:func:`rank_variants` is pure: it reads a :class:`~edgeort.device.DeviceInfo` (what
:func:`edgeort.probe` found, or a captured/faked one), the bundle's variants, the known
profiles and the tune cache, and creates no session. :func:`edgeort.load` then tries the
usable variants in order; ``edgeort inspect`` prints the same ranking.

Hard requirements (a variant failing one is *skipped*, with the reason):

1. asked for, when ``profile=`` or ``providers=`` is given;
2. the installed onnxruntime can load its IR version/opsets (:mod:`edgeort.ortcompat`);
3. its EP is available here: built into the onnxruntime wheel, or a plugin that is
   installed, registered and lists an ``OrtEpDevice`` of the variant's device type.

Order of the usable ones, best first:

1. the order of ``providers=`` when given;
2. real before simulated (QNN on x86_64 runs the HTP simulator), unless asked for;
3. variants whose profile fits this device (OS, arch, ISA: :func:`edgeort.select.evaluate`)
   before those whose profile does not fit or is unknown;
4. measured before unmeasured: a latency from the tune cache, or recorded in the bundle
   (its build-time ``latency`` or a farm ``measurements`` record) on a device with the
   same :func:`device_fingerprint`, counts only if the variant passed its
   accuracy gate; faster first;
5. the profile's score (priority), higher first; then bundle order.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgeort._dirs import cache_dir
from edgeort.device import DeviceInfo
from edgeort.ortcompat import version_guard

__all__ = [
    "Choice",
    "Ranking",
    "device_fingerprint",
    "rank_variants",
    "read_tuning",
    "tuning_cache_path",
    "variant_sha256",
]

log = logging.getLogger(__name__)

CPU_EP = "CPUExecutionProvider"
# Where an EP is known to run only in simulation when its profile is not at hand.
SIMULATED_ON = {"QNNExecutionProvider": ("x86_64",)}


@dataclass(frozen=True, slots=True)
class Choice:
    """One variant as ranked for this device."""

    variant: Any  # edgeort.bundle.Variant
    profile: Any  # edgeort.profiles.Profile | None
    usable: bool
    reason: str
    simulated: bool = False
    fits: bool = False
    score: float = 0.0
    latency_ms: float | None = None
    latency_source: str | None = None  # "tune cache" | "bundle"
    tuned: Mapping[str, Any] | None = None  # settings from the tune cache
    order: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        return str(self.variant.name)


@dataclass(frozen=True, slots=True)
class Ranking:
    """Usable variants best first, then the skipped ones in bundle order."""

    choices: tuple[Choice, ...]
    device: DeviceInfo

    @property
    def usable(self) -> tuple[Choice, ...]:
        return tuple(c for c in self.choices if c.usable)

    @property
    def skipped(self) -> tuple[Choice, ...]:
        return tuple(c for c in self.choices if not c.usable)

    def reasons(self) -> dict[str, str]:
        return {c.name: c.reason for c in self.choices}


def device_fingerprint(device: DeviceInfo) -> str:
    """16 hex digits naming this hardware (OS, arch, CPU model, cores, accelerators).

    Latencies measured on one fingerprint are trusted only on the same fingerprint.
    """
    accel = sorted(f"{a.kind}:{a.vendor}:{a.name}" for a in device.accelerators)
    key = [device.os, device.arch, device.cpu_model, device.logical_cores, accel]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def variant_sha256(variant: Any) -> str:
    """sha256 naming what runs: name, profile, EP, device, options and every file's digest
    (the same model file under another EP, profile or options is another variant)."""
    key = {
        "name": variant.name,
        "profile": [variant.profile, variant.profile_version],
        "ep": variant.ep,
        "device": variant.device,
        "model_file": variant.model_file,
        "provider_options": dict(variant.provider_options),
        "session_options": dict(variant.session_options),
        "files": sorted((f.path, f.sha256) for f in variant.files),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def tuning_cache_path(variant: Any, device: DeviceInfo, ort_version: str | None = None) -> Path:
    """``<cache>/tune/<variant sha256>-<device fingerprint>-<ort version>.json``
    (:func:`variant_sha256`, :func:`device_fingerprint`).

    ``edgeort tune`` writes it: ``{"latency_ms": float, "session_options": {str: str},
    "provider_options": {str: str}, "intra_op_threads": int | null, ...}``.
    """
    version = ort_version or ort.__version__
    name = f"{variant_sha256(variant)}-{device_fingerprint(device)}-{version}.json"
    return cache_dir() / "tune" / name


def read_tuning(variant: Any, device: DeviceInfo) -> dict[str, Any] | None:
    """The tune cache entry of ``variant`` on ``device``, or None (absent or unreadable)."""
    path = tuning_cache_path(variant, device)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.info("ignoring unreadable tune cache %s: %s", path, exc)
        return None
    latency = data.get("latency_ms") if isinstance(data, dict) else None
    if not isinstance(latency, (int, float)) or isinstance(latency, bool) or latency <= 0:
        log.info("ignoring tune cache %s: no positive latency_ms", path)
        return None
    return dict(data)


def _passed_gate(variant: Any) -> bool:
    accuracy = variant.metadata.get("accuracy")
    return not (isinstance(accuracy, Mapping) and accuracy.get("passed") is False)


def _measured(variant: Any, device: DeviceInfo) -> tuple[float, str, Mapping[str, Any] | None]:
    tuned = read_tuning(variant, device)
    if tuned is not None:
        return float(tuned["latency_ms"]), "tune cache", tuned
    latency = variant.metadata.get("latency")
    if isinstance(latency, Mapping):
        ms = latency.get("ms_median")
        same = device_fingerprint(device) in (
            latency.get("device_fingerprint"),
            latency.get("device"),
        )
        if same and isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0:
            return float(ms), "bundle", None
    for rec in variant.metadata.get("measurements") or ():  # edgeort bench --farm --merge
        if not isinstance(rec, Mapping) or rec.get("ep") not in (None, variant.ep):
            continue
        ms = rec.get("ms_median")
        same = rec.get("device_fingerprint") == device_fingerprint(device)
        if same and isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0:
            return float(ms), "bundle", None
    return 0.0, "", None


def _find_profile(variant: Any, profiles: Sequence[Any]) -> Any:
    by_name = {p.name: p for p in profiles}
    return by_name.get(variant.profile)


def _is_plugin(ep: str, device: DeviceInfo) -> bool:
    from edgeort.providers import KNOWN_PLUGINS

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
            from edgeort.providers import plugin_install_hint

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


def _asked(variant: Any, profile: Any, ask: str | None, providers: Sequence[str] | None) -> str:
    """'' when the variant is asked for (or nothing was asked), else why not."""
    if providers is not None and variant.ep not in providers:
        return f"not asked for: providers={list(providers)}"
    if ask is None:
        return ""
    names = {variant.name, variant.profile}
    if profile is not None:
        names.update({profile.name, profile.short})
    return "" if ask in names else f"not asked for: profile={ask!r}"


def _profile_fit(profile: Any, device: DeviceInfo) -> tuple[bool, float, bool, str]:
    """(fits, score, simulated, words) of a known profile on ``device``."""
    from edgeort.select import evaluate

    candidate = evaluate(profile, device)
    why = "; ".join(candidate.reasons) if candidate.reasons else ""
    if candidate.fits:
        return True, float(candidate.score), bool(candidate.simulated), f"profile fits ({why})"
    return False, float(candidate.score), bool(candidate.simulated), f"profile does not fit: {why}"


def _choose(
    index: int,
    variant: Any,
    device: DeviceInfo,
    profiles: Sequence[Any],
    ask: str | None,
    providers: Sequence[str] | None,
    ort_version: str,
) -> Choice:
    profile = _find_profile(variant, profiles)
    not_asked = _asked(variant, profile, ask, providers)
    skip = not_asked or version_guard(
        ir_version=variant.ir_version,
        opsets=variant.opsets,
        min_ort=variant.min_ort,
        ort_version=ort_version,
    )
    skip = skip or ep_unavailable(variant, device)
    if skip:
        return Choice(variant, profile, False, skip)
    explicit = ask is not None or providers is not None
    if profile is not None:
        fits, score, simulated, words = _profile_fit(profile, device)
    else:
        fits, score, words = False, 0.0, f"profile {variant.profile!r} unknown here"
        simulated = device.arch in SIMULATED_ON.get(variant.ep, ())
    passed = _passed_gate(variant)
    ms, source, tuned = _measured(variant, device) if passed else (0.0, "", None)
    order = (
        providers.index(variant.ep) if providers is not None else 0,
        simulated and not explicit,
        not fits,
        not source,
        ms,
        -score,
        index,
    )
    parts = [f"{variant.ep} available", words]
    if simulated:
        parts.append(
            f"simulated on {device.arch}" + ("" if explicit else ": ranked below real EPs")
        )
    if source:
        parts.append(f"measured {ms:.3g} ms here ({source})")
    elif not passed:
        parts.append("failed its accuracy gate: its latency is not used")
    return Choice(
        variant,
        profile,
        True,
        "; ".join(p for p in parts if p),
        simulated=simulated,
        fits=fits,
        score=score,
        latency_ms=ms if source else None,
        latency_source=source or None,
        tuned=tuned,
        order=order,
    )


def rank_variants(
    variants: Iterable[Any],
    device: DeviceInfo,
    *,
    profile: str | None = None,
    providers: Sequence[str] | None = None,
    profiles: Sequence[Any] | None = None,
    ort_version: str | None = None,
) -> Ranking:
    """Rank ``variants`` for ``device``; see the module docstring for the rules."""
    if profiles is None:
        from edgeort.profiles import load_profiles

        profiles = load_profiles()
    version = ort_version or ort.__version__
    choices = [
        _choose(i, v, device, profiles, profile, providers, version) for i, v in enumerate(variants)
    ]
    usable = sorted((c for c in choices if c.usable), key=lambda c: c.order)
    usable = [_numbered(i, c) for i, c in enumerate(usable, start=1)]
    return Ranking((*usable, *(c for c in choices if not c.usable)), device)


def _numbered(rank: int, choice: Choice) -> Choice:
    from dataclasses import replace

    return replace(choice, reason=f"rank {rank}: {choice.reason}")
