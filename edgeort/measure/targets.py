"""What the measure commands run: :class:`Target` s (a model file on one EP with its
settings) and :class:`Knobs` (the settings a measurement overrides), made into an ORT
session by :func:`create_session`; and :func:`resolve`, which turns the ``MODEL|BUNDLE``
argument into targets.

A ``.onnx`` file is one target on the EP asked for (CPU by default). A bundle (directory
or ``.zip``, opened and verified by :func:`edgeort.bundle.open_bundle`) gives one target
per variant, each with the session settings :func:`edgeort.load` would use
(:func:`edgeort.hardware.ep.session_options_for`); variants whose EP cannot run here are
returned as *skipped*, with the reason.

Whether an EP can run here, and the session itself, come from the EP module
(:mod:`edgeort.hardware.ep`): plugin EPs (QNN, OpenVINO) attached with
``add_provider_for_devices``, built-in EPs by name; an EP that is installed but has no
device here (OpenVINO on a non-Intel CPU) raises :class:`ProviderError` saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import onnxruntime as ort

from edgeort._fs import sha256_file
from edgeort.errors import DataError, ModelError, UsageError
from edgeort.hardware.ep import CPU_EP as CPU
from edgeort.hardware.ep import (
    LEVELS,
    SPINNING,
    Knobs,
    ep_unavailable,
    ep_unavailable_reason,
    merge_knobs,
    open_measure_session,
    placement,
    simulated_here,
)

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import Bundle, Variant
    from edgeort.hardware.device import DeviceInfo
    from edgeort.profiles import Profile

__all__ = [
    "CPU",
    "LEVELS",
    "SPINNING",
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
class Target:
    """One model file on one EP, with the session settings it is meant to run with."""

    label: str
    model_path: Path
    ep: str = CPU
    provider_options: Mapping[str, str] = field(default_factory=dict)
    knobs: Knobs = field(default_factory=Knobs)  # the target's own settings
    simulated: bool = False
    sha256: str | None = None
    variant: Variant | None = None  # for bundle targets
    profile: Profile | None = None  # its profile, when known
    device: DeviceInfo | None = None  # the device it was resolved on

    def with_knobs(self, knobs: Knobs) -> Target:
        return replace(self, knobs=knobs)


def create_session(
    target: Target,
    knobs: Knobs | None = None,
    *,
    profile_prefix: str | None = None,
    record_placement: bool = False,
) -> ort.InferenceSession:
    """An ORT session for ``target`` with ``knobs`` over the target's own settings
    (opened by :func:`edgeort.hardware.ep.open_measure_session`)."""
    return open_measure_session(
        target.model_path,
        target.ep,
        merge_knobs(target.knobs, knobs or Knobs()),
        label=target.label,
        provider_options=target.provider_options,
        variant=target.variant,
        profile=target.profile,
        device=target.device,
        profile_prefix=profile_prefix,
        record_placement=record_placement,
    )


# Provider options a plain model needs on EPs that cannot start without them.
DEFAULT_EP_OPTIONS: dict[str, dict[str, str]] = {"QNNExecutionProvider": {"backend_type": "htp"}}


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a path stands for: runnable targets, skipped ones (name -> why), the bundle."""

    path: Path
    kind: str  # "model" | "bundle"
    targets: tuple[Target, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)
    bundle: Bundle | None = None
    device: DeviceInfo | None = None

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


def _model_target(path: Path, ep: str | None, ep_options: Mapping[str, str]) -> Resolved:
    ep = ep or CPU
    options = {**DEFAULT_EP_OPTIONS.get(ep, {}), **ep_options}
    target = Target(
        label=path.name,
        model_path=path,
        ep=ep,
        provider_options=options,
        simulated=simulated_here(ep),
    )
    skipped = {}
    if ep != CPU:
        why = ep_unavailable_reason(ep)
        if why is not None:
            skipped[path.name] = why
    return Resolved(path, "model", () if skipped else (target,), skipped)


def _probe() -> DeviceInfo:
    from edgeort.hardware import probe

    return probe()


def _profile_of(variant: Variant, profiles: Sequence[Profile]) -> Profile | None:
    return next((p for p in profiles if p.name == variant.profile), None)


def _bundle_targets(
    path: Path, variant: str | None, ep: str | None, device: DeviceInfo | None
) -> Resolved:
    from edgeort.bundle import open_bundle
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
                simulated=simulated_here(v.ep, _profile_of(v, profiles)),
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
    device: DeviceInfo | None = None,
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
    if resolved.kind == "model" or resolved.bundle is None:
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
