"""Which variant of a bundle this device should run: the ranking, with a reason for each.

:func:`rank_variants` is pure: it reads a :class:`~edgeort.hardware.device.DeviceInfo` (what
:func:`edgeort.probe` found, or a captured/faked one), the bundle's variants, the known
profiles and the tune cache, and creates no session. :func:`edgeort.load` then tries the
usable variants in order; ``edgeort inspect`` prints the same ranking.

Hard requirements (a variant failing one is *skipped*, with the reason):

1. asked for, when ``profile=`` or ``providers=`` is given;
2. the installed onnxruntime can load its IR version/opsets (:mod:`edgeort.runtime.ortcompat`);
3. its EP is available here: built into the onnxruntime wheel, or a plugin that is
   installed, registered and lists an ``OrtEpDevice`` of the variant's device type;
4. its EP did not refuse it on this arch when it was packaged (``ep_refused`` in its
   metadata: the EP was present and session creation failed, e.g. QNN's HTP simulator
   running out of memory on x86_64; :func:`ep_refused`).

Order of the usable ones, best first:

1. the order of ``providers=`` when given;
2. real before simulated (QNN on x86_64 runs the HTP simulator), unless asked for;
3. variants whose profile fits this device (OS, arch, ISA: :func:`edgeort.profiles.match.evaluate`)
   before those whose profile does not fit or is unknown;
4. measured before unmeasured: a latency from the tune cache, or recorded in the bundle
   (its build-time ``latency`` or a farm ``measurements`` record) on a device with the
   same :func:`device_fingerprint`, counts only if the variant passed its
   accuracy gate; faster first;
5. the profile's score (priority), higher first; then bundle order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import onnxruntime as ort

from edgeort._log import get_logger
from edgeort.hardware.device import DeviceInfo
from edgeort.hardware.ep import CPU_EP, ep_unavailable, simulated_on
from edgeort.runtime.ortcompat import version_guard
from edgeort.runtime.tuning import device_fingerprint, read_tuning

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import Variant
    from edgeort.profiles import Profile

__all__ = ["Choice", "Ranking", "deferrable_eps", "rank_variants"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Choice:
    """One variant as ranked for this device."""

    variant: Variant
    profile: Profile | None
    usable: bool
    reason: str
    simulated: bool = False
    fits: bool = False
    score: float = 0.0
    latency_ms: float | None = None
    latency_source: str | None = None  # "tune cache" | "bundle"
    tuned: Mapping[str, Any] | None = None  # settings from the tune cache
    order: tuple[Any, ...] = ()
    deferred: bool = False  # plugin EP not registered yet (load() registers it if reached)

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


def _passed_gate(variant: Variant) -> bool:
    accuracy = variant.metadata.get("accuracy")
    return not (isinstance(accuracy, Mapping) and accuracy.get("passed") is False)


def _measured(variant: Variant, device: DeviceInfo) -> tuple[float, str, Mapping[str, Any] | None]:
    tuned = read_tuning(variant, device)
    if tuned is not None:
        return float(tuned["latency_ms"]), "tune cache", tuned
    fingerprint = device_fingerprint(device)
    latency = variant.metadata.get("latency")
    if isinstance(latency, Mapping):
        ms = latency.get("ms_median")
        same = fingerprint in (
            latency.get("device_fingerprint"),
            latency.get("device"),
        )
        if same and isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0:
            return float(ms), "bundle", None
    for rec in variant.metadata.get("measurements") or ():  # edgeort bench --farm --merge
        if not isinstance(rec, Mapping) or rec.get("ep") not in (None, variant.ep):
            continue
        ms = rec.get("ms_median")
        same = rec.get("device_fingerprint") == fingerprint
        if same and isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0:
            return float(ms), "bundle", None
    return 0.0, "", None


def _find_profile(variant: Variant, profiles: Sequence[Profile]) -> Profile | None:
    by_name = {p.name: p for p in profiles}
    return by_name.get(variant.profile)


def ep_refused(variant: Variant, device: DeviceInfo) -> str | None:
    """Why ``variant`` cannot run here because its EP refused it at packaging time on a
    machine of this arch (the ``ep_refused`` record); None when there is no such record."""
    record = variant.metadata.get("ep_refused")
    if not isinstance(record, Mapping) or record.get("ep", variant.ep) != variant.ep:
        return None
    if record.get("arch") not in (None, device.arch):
        return None  # refused elsewhere (e.g. a simulator): this device may take it
    where = f"{record.get('arch') or device.arch}" + (
        " (simulated)" if record.get("simulated") else ""
    )
    version = f" {record['ep_version']}" if record.get("ep_version") else ""
    return (
        f"{variant.ep}{version} refused this variant when it was packaged on {where}: "
        f"{record.get('reason') or 'no reason recorded'}"
    )


def _asked(
    variant: Variant, profile: Profile | None, ask: str | None, providers: Sequence[str] | None
) -> str:
    """'' when the variant is asked for (or nothing was asked), else why not."""
    if providers is not None and variant.ep not in providers:
        return f"not asked for: providers={list(providers)}"
    if ask is None:
        return ""
    names = {variant.name, variant.profile}
    if profile is not None:
        names.update({profile.name, profile.short})
    return "" if ask in names else f"not asked for: profile={ask!r}"


def _profile_fit(profile: Profile, device: DeviceInfo) -> tuple[bool, float, bool, str]:
    """(fits, score, simulated, words) of a known profile on ``device``."""
    from edgeort.profiles.match import evaluate

    candidate = evaluate(profile, device)
    why = "; ".join(candidate.reasons) if candidate.reasons else ""
    if candidate.fits:
        return True, float(candidate.score), bool(candidate.simulated), f"profile fits ({why})"
    return False, float(candidate.score), bool(candidate.simulated), f"profile does not fit: {why}"


def _choose(
    index: int,
    variant: Variant,
    device: DeviceInfo,
    profiles: Sequence[Profile],
    ask: str | None,
    providers: Sequence[str] | None,
    ort_version: str,
    deferred: Collection[str] = (),
) -> Choice:
    profile = _find_profile(variant, profiles)
    not_asked = _asked(variant, profile, ask, providers)
    skip = not_asked or version_guard(
        ir_version=variant.ir_version,
        opsets=variant.opsets,
        min_ort=variant.min_ort,
        ort_version=ort_version,
    )
    skip = skip or ep_refused(variant, device)  # the record alone: no registration needed
    if skip:
        return Choice(variant, profile, False, skip)
    if variant.ep in deferred:
        return _deferred(index, variant, profile, device)
    skip = ep_unavailable(variant, device)
    if skip:
        return Choice(variant, profile, False, skip)
    explicit = ask is not None or providers is not None
    if profile is not None:
        fits, score, simulated, words = _profile_fit(profile, device)
    else:
        fits, score, words = False, 0.0, f"profile {variant.profile!r} unknown here"
        simulated = device.arch in simulated_on(variant.ep)  # the built-in profiles of its EP
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


def _deferred(index: int, variant: Variant, profile: Profile | None, device: DeviceInfo) -> Choice:
    """A variant whose plugin EP :func:`edgeort.load` has not registered yet: it runs
    only simulated here, so every real EP ranks above it (see :func:`deferrable_eps`)."""
    why = (
        f"{variant.ep} not registered yet: simulated on {device.arch}: ranked below real EPs "
        "(registered and checked only if every variant above it fails)"
    )
    order = (0, True, True, True, 0.0, 0.0, index)
    return Choice(variant, profile, True, why, simulated=True, order=order, deferred=True)


def deferrable_eps(
    variants: Sequence[Variant],
    profiles: Sequence[Profile],
    arch: str,
    ort_version: str | None = None,
) -> frozenset[str]:
    """Plugin EPs whose registration :func:`edgeort.load` can leave until needed: every
    variant on them has a profile saying the EP runs only simulated on ``arch``, and a
    CPU-EP variant that this onnxruntime can load ranks above them anyway (a real EP
    always ranks above a simulated one when nothing is asked for explicitly)."""
    version = ort_version or ort.__version__
    cpu_ok = any(
        v.ep == CPU_EP
        and not version_guard(
            ir_version=v.ir_version, opsets=v.opsets, min_ort=v.min_ort, ort_version=version
        )
        for v in variants
    )
    if not cpu_ok:
        return frozenset()
    by_name = {p.name: p for p in profiles}
    out = set()
    for ep in {v.ep for v in variants} - {CPU_EP}:
        mine = [by_name.get(v.profile) for v in variants if v.ep == ep]
        if all(_simulated_plugin(p, arch) for p in mine):
            out.add(ep)
    return frozenset(out)


def _simulated_plugin(profile: Profile | None, arch: str) -> bool:
    """The profile's EP is an installed plugin (its module is on the path; nothing is
    imported) that runs only simulated on ``arch``."""
    if profile is None or not profile.runtime.plugin_module:
        return False
    if arch not in profile.runtime.simulated_on:
        return False
    import importlib.util

    try:
        return importlib.util.find_spec(profile.runtime.plugin_module) is not None
    except (ImportError, ValueError):
        return False


def rank_variants(
    variants: Iterable[Variant],
    device: DeviceInfo,
    *,
    profile: str | None = None,
    providers: Sequence[str] | None = None,
    profiles: Sequence[Profile] | None = None,
    ort_version: str | None = None,
    deferred: Collection[str] = (),
) -> Ranking:
    """Rank ``variants`` for ``device``; see the module docstring for the rules.
    ``deferred``: plugin EPs not registered yet (:func:`deferrable_eps`), ranked last
    without an availability check."""
    if profiles is None:
        from edgeort.profiles import load_profiles

        profiles = load_profiles()
    variants = list(variants)
    if profile is not None:
        _check_asked_name(profile, variants, profiles)
    version = ort_version or ort.__version__
    choices = [
        _choose(i, v, device, profiles, profile, providers, version, deferred)
        for i, v in enumerate(variants)
    ]
    usable = sorted((c for c in choices if c.usable), key=lambda c: c.order)
    usable = [_numbered(i, c) for i, c in enumerate(usable, start=1)]
    return Ranking((*usable, *(c for c in choices if not c.usable)), device)


def _check_asked_name(ask: str, variants: Sequence[Any], profiles: Sequence[Any]) -> None:
    """``profile=`` must name a variant, its profile or that profile's short name: an
    unknown name is a :class:`~edgeort.errors.UsageError` with the closest one."""
    import difflib

    from edgeort.errors import UsageError

    names: list[str] = []
    for variant in variants:
        profile = _find_profile(variant, profiles)
        for name in (variant.name, variant.profile, getattr(profile, "short", None)):
            if name and name not in names:
                names.append(name)
    if ask in names:
        return
    close = difflib.get_close_matches(ask, names, 1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(
        f"--profile {ask!r}: no variant of this bundle has that name, profile or short "
        f"name{hint} (known: {', '.join(names)})",
        option="--profile",
    )


def _numbered(rank: int, choice: Choice) -> Choice:
    from dataclasses import replace

    return replace(choice, reason=f"rank {rank}: {choice.reason}")
