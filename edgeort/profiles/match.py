"""Ranking: which device profiles fit this device, best first, and why.

Like ``packaging.tags.sys_tags()``, :func:`rank` returns an ordered list: the profiles
that fit, best first (``match.priority``; a profile whose EP runs only in simulation on
this arch ranks below every real one), then the excluded ones. Every candidate carries
its reasons: what matched, or exactly what is missing (the ISA flags, the pip package,
the device, the OS).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edgeort.errors import Problem, ProfileError, UsageError
from edgeort.hardware.device import DeviceInfo
from edgeort.hardware.ep import check_profile_ep
from edgeort.profiles import Profile

__all__ = ["Candidate", "evaluate", "intra_op_threads", "rank", "resolve_target"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One profile judged against one device."""

    profile: Profile
    fits: bool
    score: int  # match.priority; higher is better among those that fit
    reasons: tuple[str, ...]  # why it fits, or why it is excluded
    simulated: bool  # the EP runs in simulation on this arch (runtime.simulated_on)
    threads: int  # intra-op threads this profile gets on this device

    def to_json(self) -> dict[str, Any]:
        """The ``ranking`` entries of ``edgeort probe --json`` (docs/probe.md)."""
        p = self.profile
        return {
            "profile": p.name,
            "short": p.short,
            "ep": p.runtime.ep,
            "fits": self.fits,
            "score": self.score,
            "simulated": self.simulated,
            "threads": self.threads,
            "reasons": list(self.reasons),
            "source": str(p.source) if p.source else "builtin",
        }


def rank(profiles: Iterable[Profile], device: DeviceInfo) -> list[Candidate]:
    """Every profile judged: fitting ones first (real before simulated, then by priority,
    then name), then the excluded ones (by priority, then name)."""
    judged = [evaluate(p, device) for p in profiles]
    return sorted(
        judged,
        key=lambda c: (not c.fits, c.fits and c.simulated, -c.score, c.profile.name),
    )


def evaluate(profile: Profile, device: DeviceInfo) -> Candidate:
    """Judge one profile: every predicate is checked, so every failing one is reported."""
    ok: list[str] = []
    bad: list[str] = []
    simulated = device.arch in profile.runtime.simulated_on
    _check_os(profile, device, ok, bad)
    if simulated:
        ok.append(
            f"{device.arch} is in runtime.simulated_on: {profile.runtime.ep} runs in "
            "simulation here, so the hardware predicates are waived"
        )
    else:
        _check_hardware(profile, device, ok, bad)
    check_profile_ep(profile, device, simulated, ok, bad)
    return Candidate(
        profile=profile,
        fits=not bad,
        score=profile.match.priority,
        reasons=tuple(bad or ok),
        simulated=simulated,
        threads=intra_op_threads(profile, device),
    )


def _check_os(profile: Profile, device: DeviceInfo, ok: list[str], bad: list[str]) -> None:
    wanted = profile.match.os
    if not wanted:
        return
    if device.os in wanted:
        ok.append(f"os {device.os} matches")
    else:
        bad.append(f"os is {device.os}; profile is for {', '.join(wanted)}")


def _check_hardware(profile: Profile, device: DeviceInfo, ok: list[str], bad: list[str]) -> None:
    m = profile.match
    if m.arch:
        if device.arch in m.arch:
            ok.append(f"arch {device.arch} matches")
        else:
            bad.append(f"arch is {device.arch}; profile is for {', '.join(m.arch)}")
    vendors = m.cpu_vendor_any
    if vendors:
        if device.cpu_vendor in vendors:
            ok.append(f"CPU vendor {device.cpu_vendor} matches")
        else:
            vendor = device.cpu_vendor or "unknown"
            bad.append(f"CPU vendor is {vendor}; profile is for {', '.join(vendors)}")
    _check_flags(profile, device.cpu_flags, ok, bad)
    if m.soc_any:
        soc = (device.soc or "").lower()
        hit = next((s for s in m.soc_any if s.lower() in soc), None)
        if hit:
            ok.append(f"SoC {device.soc!r} matches {hit!r}")
        else:
            bad.append(
                f"SoC is {device.soc or 'unknown'!r}; profile wants one of {list(m.soc_any)}"
            )
    if m.accelerators_any:
        have = {f"{a.kind}:{a.vendor}": a for a in device.accelerators}
        hit = next((a for a in m.accelerators_any if a in have), None)
        if hit:
            ok.append(f"accelerator {hit} present ({have[hit].source})")
        else:
            found = ", ".join(sorted(have)) or "none"
            bad.append(f"no accelerator {' or '.join(m.accelerators_any)} (found: {found})")


def _check_flags(profile: Profile, flags: frozenset[str], ok: list[str], bad: list[str]) -> None:
    m = profile.match
    missing = [f for f in m.cpu_flags_all if f not in flags]
    if missing:
        bad.append(f"CPU lacks {', '.join(missing)} (cpu_flags_all)")
    elif m.cpu_flags_all:
        ok.append(f"{', '.join(m.cpu_flags_all)} present")
    if m.cpu_flags_any:
        have = [f for f in m.cpu_flags_any if f in flags]
        if have:
            ok.append(f"{', '.join(have)} present")
        else:
            bad.append(f"CPU has none of {', '.join(m.cpu_flags_any)} (cpu_flags_any)")
    unwanted = [f for f in m.cpu_flags_none if f in flags]
    if unwanted:
        bad.append(f"CPU has {', '.join(unwanted)}, which this profile excludes (cpu_flags_none)")
    elif m.cpu_flags_none:
        ok.append(f"no {', '.join(m.cpu_flags_none)}")


def intra_op_threads(profile: Profile, device: DeviceInfo) -> int:
    """Threads for ``profile`` here: ``"performance"`` = physical performance cores,
    ``"physical"`` = physical cores, an int N = N (0 = let ORT decide)."""
    value = profile.session.intra_op_threads
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if value == "performance":
        return device.performance_cores or device.physical_cores or device.logical_cores or 1
    if value == "physical":
        return device.physical_cores or device.logical_cores or 1
    where = str(profile.source) if profile.source else f"profile {profile.name}"
    message = f"expected 'physical', 'performance' or an integer >= 0, got {value!r}"
    raise ProfileError([Problem(where, "session.intra_op_threads", message)])


def resolve_target(
    name: str, profiles: Iterable[Profile], device: DeviceInfo | None = None
) -> Profile:
    """A profile by exact name, or by short name (``cpu``, ``qnn``, ...): with a device,
    the best one that fits here; otherwise (or if none fits) the one marked default."""
    profiles = tuple(profiles)
    for profile in profiles:
        if profile.name == name:
            return profile
    same = [p for p in profiles if p.short == name]
    if not same:
        known = sorted({p.name for p in profiles} | {p.short for p in profiles})
        import difflib  # only on this error

        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(
            f"unknown target {name!r}{hint} (known: {', '.join(known) or 'none'})",
            option="target",
        )
    if device is not None:
        fitting = [c for c in rank(same, device) if c.fits]
        if fitting:  # the best score; on a tie the one marked default
            ties = [c.profile for c in fitting if c.score == fitting[0].score]
            return next((p for p in ties if p.default), ties[0])
    defaults = [p for p in same if p.default]
    if len(defaults) == 1 or len(same) == 1:
        return (defaults or same)[0]
    names = ", ".join(sorted(p.name for p in same))
    raise UsageError(
        f"target {name!r} names {len(same)} profiles ({names}) and "
        f"{'several are' if defaults else 'none is'} marked default; name one exactly",
        option="target",
    )
