"""Writing bundles from farm results, always through the bundle writer.

- :func:`assemble`: the single-variant bundles the workers built for one model become one
  bundle, variants in target order (as a local ``package`` writes them).
- :func:`merge_measurements`: farm benchmark rows become each variant's
  ``measurements`` list (docs/bundle-format.md section 5), and the bundle is written again.

Both re-seal with :func:`edgeort.bundle.write_bundle` (every file hashed, the manifest
self-digest recomputed, atomic replace): the result is a complete, valid bundle or the
old one is left as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgeort.errors import UsageError

__all__ = ["MEASUREMENT_KEYS", "assemble", "merge_measurements", "variant_spec"]

_TYPED = frozenset(
    {"profile", "profile_version", "precision", "inputs", "outputs", "ir_version"}
    | {"opsets", "min_ort", "ep_package", "files"}
)
_WRITER_KEYS = frozenset(
    {"format", "format_version", "producer", "components_sha256", "self_sha256"}
)
MEASUREMENT_KEYS = (
    "device_fingerprint", "device", "worker", "ep", "simulated", "p50_ms", "p95_ms",
    "p99_ms", "load_ms", "runs", "ort_version", "ort_build", "ep_version", "measured_at",
)  # fmt: skip
SIGNATURE_JSON = "signature.json"


def variant_spec(bundle: Any, v: Any, metadata: Mapping[str, Any] | None = None) -> Any:
    """A :class:`~edgeort.bundle.VariantSpec` that writes variant ``v`` of ``bundle``
    again (its files from the verified bundle), with ``metadata`` replacing its own."""
    from edgeort.bundle import VariantSpec

    meta = dict(v.metadata if metadata is None else metadata)
    return VariantSpec(
        name=v.name,
        ep=v.ep,
        device=v.device,
        source_dir=bundle.variant_dir(v),
        model_file=v.model_file,
        provider_options=dict(v.provider_options),
        session_options=dict(v.session_options),
        profile=v.profile,
        profile_version=v.profile_version,
        precision=v.precision,
        inputs=v.inputs,
        outputs=v.outputs,
        ir_version=v.ir_version,
        opsets=dict(v.opsets),
        min_ort=v.min_ort,
        ep_package=v.ep_package,
        metadata={k: val for k, val in meta.items() if k not in _TYPED},
    )


def package_metadata(bundle: Any) -> dict[str, Any]:
    return {k: v for k, v in bundle.metadata.items() if k not in _WRITER_KEYS}


def _write(out: Path, bundle: Any, specs: Sequence[Any], *, as_zip: bool) -> Path:
    """Write ``specs`` at ``out`` under ``bundle``'s package name, version and metadata."""
    from edgeort.bundle import write_bundle

    return write_bundle(
        out,
        specs,
        package_name=bundle.package_name,
        package_version=bundle.package_version,
        metadata=package_metadata(bundle),
        zip=as_zip,
    )


def assemble(
    out: Path,
    parts: Sequence[tuple[Any, Mapping[str, Any]]],
    *,
    as_zip: bool,
) -> Path:
    """Write one bundle at ``out`` from ``parts``: (opened single-variant bundle, extra
    variant metadata) in target order. Package name and metadata come from the first."""
    specs = []
    for bundle, extra in parts:
        for v in bundle.variants:
            specs.append(variant_spec(bundle, v, {**v.metadata, **extra}))
    return _write(out, parts[0][0], specs, as_zip=as_zip)


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    rec = {k: row[k] for k in MEASUREMENT_KEYS if row.get(k) is not None}
    rec.setdefault("measured_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    rec["ms_median"] = row["p50_ms"]
    return rec


def merge_measurements(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Add the successful benchmark ``rows`` to their variants' ``measurements`` in the
    bundle at ``path`` (directory or zip), replacing an older record of the same device
    fingerprint and EP; the bundle is rewritten atomically. A signed bundle is refused
    (rewriting it would drop the signature: merge, then sign again)."""
    from edgeort.bundle import open_bundle

    path = Path(path)
    bundle = open_bundle(path)
    if (bundle.root / SIGNATURE_JSON).exists():
        raise UsageError(
            f"{path}: the bundle is signed; merging measurements rewrites its manifest and "
            "would drop the signature: merge into an unsigned copy, then sign it again",
            option="--merge",
        )
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("ok") and row.get("p50_ms") is not None:
            by_variant.setdefault(str(row["variant"]), []).append(_record(row))
    specs = []
    for v in bundle.variants:
        meta = dict(v.metadata)
        new = by_variant.get(v.name, [])
        if new:
            keys = {(r.get("device_fingerprint"), r.get("ep")) for r in new}
            old = [
                dict(r)
                for r in meta.get("measurements") or ()
                if isinstance(r, Mapping) and (r.get("device_fingerprint"), r.get("ep")) not in keys
            ]
            meta["measurements"] = old + sorted(new, key=lambda r: str(r.get("worker")))
        specs.append(variant_spec(bundle, v, meta))
    return _write(path, bundle, specs, as_zip=path.is_file())
