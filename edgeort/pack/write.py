"""Step 7: turn the chosen variants into :class:`VariantSpec` objects and write the
bundle with :func:`edgeort.bundle.write_bundle` (atomic: a complete bundle or nothing)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeort._fs import os_error_text
from edgeort.errors import PackageError
from edgeort.pack.load import SourceModel
from edgeort.pack.manifest import variant_metadata
from edgeort.pack.result import FailedTarget, PackageResult, VariantResult
from edgeort.pack.target import TargetOutcome
from edgeort.profiles import Profile

__all__ = ["stage_files", "write"]

_TYPED = ("profile", "profile_version", "precision", "inputs", "outputs", "ir_version")
_TYPED_MORE = ("opsets", "min_ort", "ep_package")


def _options(mapping: object) -> dict[str, str]:
    """Every option as a string. ``{cache_dir}`` stays as written: the loader expands it
    on the device (``edgeort.hardware.ep.expand_options``); JSON values stay whole."""
    items = dict(mapping or {})  # type: ignore[call-overload]
    return {str(k): str(v) for k, v in items.items()}


def stage_files(model: Path, extra: Sequence[Path], dest: Path) -> str:
    """Copy a variant's files into ``dest``: the model (as ``model.onnx``/``model.ort``),
    its external ``.data`` file and ``extra``; the model's name there."""
    dest.mkdir(parents=True, exist_ok=True)
    model_name = "model.ort" if model.suffix == ".ort" else "model.onnx"
    shutil.copyfile(model, dest / model_name)
    data = model.with_name(model.name + ".data")
    if data.is_file():
        shutil.copyfile(data, dest / data.name)
    for path in extra:
        shutil.copyfile(path, dest / path.name)
    return model_name


def session_options(profile: Profile, model_name: str) -> dict[str, str]:
    """The session options a variant of ``profile`` records: the profile's config (less
    the EP-context keys, which only building uses) and the ORT-format keys for ``.ort``.
    The shipped variant and the one verified in a target runtime both get these."""
    session = _options(profile.session.config)
    session = {k: v for k, v in session.items() if not k.startswith("ep.context")}
    if model_name.endswith(".ort"):
        session["session.load_model_format"] = "ORT"
        session["session.enable_saved_runtime_optimizations"] = "1"
    return session


def _spec(outcome: TargetOutcome, staged: Path, source: SourceModel) -> object:
    from edgeort.bundle import TensorSpec, VariantSpec

    profile = outcome.work.profile
    name = profile.name
    model_name = stage_files(outcome.chosen.model_file, outcome.chosen.extra_files, staged / name)
    meta = variant_metadata(outcome, source.sha256, source.path.name)
    session = session_options(profile, model_name)
    session.update(dict(outcome.chosen.session_config))  # e.g. a slow fusion kept off
    device = "" if profile.runtime.simulated_on else profile.runtime.device
    tensors = {
        key: tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in meta[key])
        for key in ("inputs", "outputs")
    }
    typed = {k: meta.pop(k) for k in (*_TYPED, *_TYPED_MORE)}
    typed.update(tensors)
    return VariantSpec(
        name=name,
        ep=profile.runtime.ep,
        device=device,
        source_dir=staged / name,
        model_file=model_name,
        provider_options=_options(profile.runtime.provider_options),
        session_options=session,
        metadata=meta,
        **typed,
    )


def _result(outcome: TargetOutcome, spec: object) -> VariantResult:
    meta = spec.metadata  # type: ignore[attr-defined]
    return VariantResult(
        name=spec.name,  # type: ignore[attr-defined]
        profile=outcome.work.profile.name,
        ep=outcome.work.profile.runtime.ep,
        precision=outcome.chosen.precision,
        model_file=spec.model_file,  # type: ignore[attr-defined]
        accuracy=meta["accuracy"],
        latency=meta["latency"],
        gates=tuple(meta["gates"]),
        ep_refused=meta.get("ep_refused"),
    )


def write(
    out: Path,
    source: SourceModel,
    outcomes: Sequence[TargetOutcome],
    *,
    as_zip: bool,
    family: str,
    name: str | None = None,
    version: str = "1",
    failed: Sequence[FailedTarget] = (),
    state: Sequence[tuple[str, str]] = (),
) -> PackageResult:
    from edgeort.bundle import write_bundle

    staged = outcomes[0].work.work.parent / "staged"
    try:
        specs = [_spec(o, staged, source) for o in outcomes]
    except OSError as exc:
        raise PackageError(
            f"cannot stage the variants for {out} in {staged}: {os_error_text(exc)}", path=staged
        ) from exc
    data = outcomes[0].work.data_kind
    metadata: dict[str, Any] = {
        "source_model": {"name": source.path.name, "sha256": source.sha256, "size": source.size},
        "family": family,
        "data": data,
    }
    if failed:  # --keep-going: the targets left out, and why
        metadata["failed_targets"] = [f.to_json() for f in failed]
    if state:
        metadata["state"] = [{"input": i, "output": o} for i, o in state]
    path = write_bundle(
        out,
        specs,  # type: ignore[arg-type]
        package_name=name or source.path.stem or "model",
        package_version=version,
        metadata=metadata,
        zip=as_zip,
    )
    variants = tuple(_result(o, s) for o, s in zip(outcomes, specs, strict=True))
    notes = tuple(f"target {f.target} left out (--keep-going): {f.message}" for f in failed)
    return PackageResult(
        path, family, data, variants, notes, failed=tuple(failed), state=tuple(state)
    )
