"""``edgeort.load()``: open and verify a bundle, pick the variant, create the session.

Data flow: :func:`edgeort.bundle.open_bundle` (zip extraction, size-then-sha256 of every
file, closed file list, no links or path escapes -- all before ORT sees a byte) ->
the device (:func:`edgeort.hardware.probe`, plugin EPs registered only for the EPs the bundle
uses) -> :func:`edgeort.runtime.ranking.rank_variants` -> :func:`create_session` for each usable
variant in ranked order until one works. Every skipped or failed variant is logged once,
with its reason, and kept in :attr:`Model.reasons <edgeort.runtime.model.Model.reasons>`.

Sessions are created with ``enable_fallback=0``: ORT's Python wrapper would otherwise
print to stdout and silently re-create the session on the CPU EP (also during ``run``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeort._log import DEBUG, INFO, get_logger
from edgeort.errors import EdgeortError, NoVariantError, ProviderError, UsageError
from edgeort.hardware.ep import SessionPlan, create_session, open_session, session_plan
from edgeort.runtime.model import Model

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime as ort

    from edgeort.bundle import Bundle, Variant
    from edgeort.hardware.device import DeviceInfo
    from edgeort.runtime.plans import LoadPlan
    from edgeort.runtime.ranking import Choice, Ranking

__all__ = [
    "Model",
    "create_session",
    "load",
    "rank_bundle",
    "session_options_for",
    "tuning_cache_path",
]

log = get_logger(__name__)


def __getattr__(name: str) -> Any:
    """``session_options_for`` and ``tuning_cache_path`` are imported on first use: a load
    that follows a kept plan (:mod:`edgeort.runtime.plans`) needs neither."""
    if name == "session_options_for":
        from edgeort.hardware.ep import session_options_for

        return session_options_for
    if name == "tuning_cache_path":
        from edgeort.runtime.tuning import tuning_cache_path

        return tuning_cache_path
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _device_for(variants: Sequence[Variant]) -> DeviceInfo:
    """probe() registering only the plugin EPs the bundle's variants use (none, and no
    plugin looked up, for a CPU-only bundle); its notes describe that state."""
    from edgeort.hardware import probe

    return probe(register_plugins=sorted({str(v.ep) for v in variants}))


def rank_bundle(
    bundle: Bundle,
    *,
    profile: str | None = None,
    providers: Sequence[str] | None = None,
    device: DeviceInfo | None = None,
    defer: bool = False,
) -> Ranking:
    """The ranking :func:`load` would use for ``bundle`` here; creates no session.

    ``defer`` (what :func:`load` does when it probes): plugin EPs that run only simulated
    here and rank below a loadable CPU variant are not looked up or registered
    (:func:`~edgeort.runtime.ranking.deferrable_eps`); they rank last, unchecked."""
    if providers is not None and (
        isinstance(providers, str) or not all(isinstance(p, str) for p in providers)
    ):
        raise UsageError(
            f"providers must be a list of EP names, got {providers!r}", option="providers"
        )
    from edgeort.hardware._basics import this_arch
    from edgeort.profiles import profiles_for
    from edgeort.runtime.ranking import deferrable_eps, rank_variants

    known = profiles_for(str(v.profile) for v in bundle.variants)
    deferred: frozenset[str] = frozenset()
    if device is None and defer and profile is None and providers is None:
        deferred = deferrable_eps(bundle.variants, known, this_arch())
    dev = device
    if dev is None:
        dev = _device_for([v for v in bundle.variants if v.ep not in deferred])
    return rank_variants(
        bundle.variants,
        dev,
        profile=profile,
        providers=providers,
        profiles=known,
        deferred=deferred,
    )


def _tuned(choice: Choice) -> tuple[dict[str, Any], dict[str, str], int | None, dict[str, str]]:
    """(session config, provider options, threads, level/mode) from the tune cache."""
    tuned = dict(choice.tuned or {})
    session = tuned.get("session_options")
    options = tuned.get("provider_options")
    threads = tuned.get("intra_op_threads")
    threads = threads if isinstance(threads, int) and not isinstance(threads, bool) else None
    knobs = {
        k: str(tuned[k])
        for k in ("graph_optimization_level", "execution_mode")
        if isinstance(tuned.get(k), str)
    }
    return (
        dict(session) if isinstance(session, dict) else {},
        {str(k): str(v) for k, v in options.items()} if isinstance(options, dict) else {},
        threads,
        knobs,
    )


def _try(
    bundle: Bundle, choice: Choice, device: DeviceInfo, strict: bool, threads: int | None
) -> tuple[ort.InferenceSession, SessionPlan]:
    overrides, options, tuned_threads, knobs = _tuned(choice)
    plan = session_plan(
        choice.variant,
        choice.profile,
        device,
        threads=threads if threads is not None else tuned_threads,
        strict=strict,
        overrides=overrides,
        provider_options=options,
        graph_optimization_level=knobs.get("graph_optimization_level"),
        execution_mode=knobs.get("execution_mode"),
    )
    return open_session(bundle.model_path(choice.variant), choice.variant, plan), plan


def _planned(bundle: Bundle, kept: LoadPlan) -> Model | None:
    """The Model a kept plan describes, or None when its session cannot be opened."""
    try:
        variant = bundle.variant(kept["variant"])
        session = open_session(bundle.model_path(variant), variant, kept["session"])
    except (EdgeortError, KeyError, TypeError, ValueError) as exc:
        log.info("kept load plan not used (the full path decides again): %s", exc)
        return None
    for level, message in kept["log"]:
        log.log(level, "%s", message)
    return Model(
        session,
        inputs=variant.inputs,
        outputs=variant.outputs,
        variant=variant,
        profile=kept["profile"] or None,
        reasons=kept["reasons"],
    )


def _no_variant(bundle: Bundle, reasons: dict[str, str], strict: bool) -> NoVariantError:
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
    key: dict[str, Any] | None = None
    if profile is None and providers is None and device is None and isinstance(strict, bool):
        from edgeort.runtime import plans

        key = plans.plan_key(opened, strict=strict, threads=threads)
        where = plans.plan_path(opened, strict=strict, threads=threads)
        kept = plans.read_plan(where, key) if key else None
        model = _planned(opened, kept) if kept else None
        if model is not None:
            return model
    ranking = rank_bundle(opened, profile=profile, providers=providers, device=device, defer=True)
    reasons = ranking.reasons()
    logged_lines = _log_skipped(ranking)
    candidates = list(ranking.usable[:1] if strict else ranking.usable)
    tried: set[str] = set()
    failed = False  # a variant ranked above the one picked failed to open
    while candidates:
        choice = candidates.pop(0)
        if choice.deferred:
            # Every real variant failed: now look up the simulated plugin EPs after all.
            logged = {c.name for c in ranking.skipped}
            ranking = rank_bundle(opened, device=None)
            reasons.update({c.name: c.reason for c in ranking.choices if c.name not in tried})
            logged_lines += _log_skipped(ranking, logged)
            candidates = [c for c in ranking.usable if c.name not in tried]
            continue
        tried.add(choice.name)
        try:
            session, plan = _try(opened, choice, ranking.device, strict, threads)
        except ProviderError as exc:
            if strict:
                raise
            reasons[choice.name] = f"failed: {exc}"
            failed = True
            log.warning("variant %s failed, trying the next: %s", choice.name, exc)
            continue
        reasons[choice.name] = f"picked: {choice.reason}"
        variant = choice.variant
        if key is not None and not failed:
            # After a failure no plan is kept: the failed variant (a GPU out of memory,
            # a device busy) may open next time, and the full path tries it again.
            kept_plan = plans.LoadPlan(
                variant=variant.name,
                profile=choice.profile.name if choice.profile is not None else "",
                session=plan,
                reasons=reasons,
                log=logged_lines,
            )
            plans.write_plan(where, key, kept_plan)
        return Model(
            session,
            inputs=variant.inputs,
            outputs=variant.outputs,
            variant=variant,
            profile=choice.profile,
            reasons=reasons,
        )
    raise _no_variant(opened, reasons, strict)


def _log_skipped(ranking: Ranking, logged: Collection[str] = ()) -> list[tuple[int, str]]:
    """Log each skipped variant once; returns the (level, message) lines logged."""
    lines: list[tuple[int, str]] = []
    for choice in ranking.skipped:
        if choice.name in logged:
            continue
        level = DEBUG if choice.reason.startswith("not asked for") else INFO
        lines.append((level, f"variant {choice.name} skipped: {choice.reason}"))
        log.log(level, "%s", lines[-1][1])
    return lines
