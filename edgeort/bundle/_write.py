"""``write_bundle``: variants in, one verified bundle directory (or zip) out, atomically.

Files are copied from each ``VariantSpec.source_dir`` and hashed in one pass into a
staging directory beside the target; the JSON is written canonically; the staged bundle
is re-read with the same parser and external-data checks a device uses (so a writer
can never produce a bundle the reader refuses); then it is fsynced and put in place
(``_place.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeort import __version__
from edgeort._fs import TMP_PREFIX, fsync_tree, os_error_text, staging_dir
from edgeort.bundle._json import canonical_json, sort_tree
from edgeort.bundle._manifest import (
    COMPONENT,
    COMPONENT_JSON,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_JSON,
    read_bundle,
)
from edgeort.bundle._model import FileEntry, TensorSpec
from edgeort.bundle._paths import path_problem, twin_problems
from edgeort.bundle._place import clean_leftovers, locked, place_dir, place_file
from edgeort.bundle._seal import SELF_KEY, ZEROS, seal_manifest
from edgeort.bundle._verify import CHUNK, check_external_refs, scan_tree
from edgeort.bundle._verify import model_refs as _model_refs
from edgeort.bundle._zip import write_zip
from edgeort.errors import BundleError, IntegrityError, PackageError, UsageError

__all__ = ["VariantSpec", "write_bundle"]

_TYPED_KEYS = frozenset(
    {"profile", "profile_version", "precision", "inputs", "outputs", "ir_version"}
    | {"opsets", "min_ort", "ep_package", "files"}
)
_MANIFEST_KEYS = frozenset({"format", "format_version", "producer", "components_sha256", SELF_KEY})


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """One variant to write. Every file under ``source_dir`` is copied and hashed;
    ``device=""`` omits the ORT ``device`` key (QNN: its device type differs by host);
    ``metadata`` holds recipe, accuracy, latency, gates and any extra keys."""

    name: str
    ep: str
    device: str
    source_dir: Path
    model_file: str
    provider_options: Mapping[str, str]
    session_options: Mapping[str, str]
    profile: str
    profile_version: str
    precision: str
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]
    ir_version: int
    opsets: Mapping[str, int]
    min_ort: str
    ep_package: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays (``.item()``/``.tolist()``) become plain JSON values."""
    for method in ("tolist", "item"):
        if hasattr(value, method):
            return getattr(value, method)()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _copy_variant(spec: VariantSpec, dest: Path) -> list[FileEntry]:
    src = Path(spec.source_dir)
    if not src.is_dir():
        raise UsageError(
            f"variant {spec.name!r}: source_dir {src} is not a directory", option="source_dir"
        )
    try:
        files, _dirs = scan_tree(src)
    except IntegrityError as exc:
        raise UsageError(
            f"variant {spec.name!r}: source_dir {src}: {exc}", option="source_dir"
        ) from None
    problems = [f"{rel!r} {why}" for rel in files if (why := path_problem(rel))] + twin_problems(
        files
    )
    if problems:
        raise UsageError(f"variant {spec.name!r}: file name {problems[0]}", option="source_dir")
    entries = []
    for rel in sorted(files):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with open(src / rel, "rb") as fin, open(target, "xb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
                size += len(chunk)
        entries.append(FileEntry(rel, size, digest.hexdigest()))
    return entries


def _variant_json(spec: VariantSpec, files: list[FileEntry]) -> dict[str, Any]:
    clash = sorted(_TYPED_KEYS & set(spec.metadata))
    if clash:
        raise UsageError(
            f"variant {spec.name!r}: metadata may not set {clash} (they are fields)",
            option="metadata",
        )
    edgeort = {
        **spec.metadata,
        "profile": spec.profile,
        "profile_version": spec.profile_version,
        "precision": spec.precision,
        "inputs": [t.to_json() for t in spec.inputs],
        "outputs": [t.to_json() for t in spec.outputs],
        "ir_version": spec.ir_version,
        "opsets": dict(spec.opsets),
        "min_ort": spec.min_ort,
        "ep_package": spec.ep_package,
        "files": [f.to_json() for f in files],
    }
    ort: dict[str, Any] = {"model_file": spec.model_file}
    for key in ("provider_options", "session_options"):
        if getattr(spec, key):
            ort[key] = dict(getattr(spec, key))
    body: dict[str, Any] = {
        "variant_directory": spec.name,
        "ep": spec.ep,
        "executor_info": {"ort": ort},
        "additional_metadata": {"edgeort": edgeort},
    }
    if spec.device:
        body["device"] = spec.device
    return body


def _manifest_json(
    package_name: str,
    package_version: str,
    description: str,
    metadata: Mapping[str, Any],
    component: bytes,
) -> dict[str, Any]:
    clash = sorted(_MANIFEST_KEYS & set(metadata))
    if clash:
        raise UsageError(f"metadata may not set {clash} (edgeort writes them)", option="metadata")
    edgeort = {
        **metadata,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "producer": {"name": "edgeort", "version": __version__},
        "components_sha256": {COMPONENT: hashlib.sha256(component).hexdigest()},
        SELF_KEY: ZEROS,  # replaced by the self-digest once the bytes exist (_seal.py)
    }
    manifest: dict[str, Any] = {
        "schema_version": "1.0",
        "layout": "portable",
        "components": {COMPONENT: COMPONENT},
        "package_name": package_name,
        "package_version": package_version,
        "additional_metadata": {"edgeort": edgeort},
    }
    if description:
        manifest["description"] = description
    return manifest


def _dump(value: Any, what: str) -> bytes:
    """Canonical JSON; component.json's variants keep declaration order (ORT's tie-break)."""
    try:
        plain = _roundtrip(value)
        if what != COMPONENT_JSON:
            return canonical_json(plain)
        plain["variants"] = {k: sort_tree(v) for k, v in plain["variants"].items()}
        return canonical_json(plain, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what}: not JSON-serialisable: {exc}", option="metadata") from None


def _roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_jsonable, allow_nan=False))


def _stage(root: Path, specs: Sequence[VariantSpec], head: dict[str, Any]) -> None:
    """Copy, hash and describe every variant under ``root``; re-read it as a device would."""
    variants = {}
    for spec in specs:
        files = _copy_variant(spec, root / COMPONENT / spec.name)
        variants[spec.name] = _variant_json(spec, files)
    component = _dump({"variants": variants}, COMPONENT_JSON)
    (root / COMPONENT_JSON).write_bytes(component)
    manifest = _dump(_manifest_json(component=component, **head), MANIFEST_JSON)
    try:
        manifest = seal_manifest(manifest)
    except BundleError:  # metadata holds another "self_sha256": "<64 hex>" somewhere
        raise UsageError(
            f'{MANIFEST_JSON}: metadata may not hold a "{SELF_KEY}" key with a 64-hex value',
            option="metadata",
        ) from None
    (root / MANIFEST_JSON).write_bytes(manifest)
    try:
        bundle = read_bundle(root)
        for v in bundle.variants:
            path = bundle.model_path(v)
            check_external_refs(v, path.relative_to(bundle.root).as_posix(), _model_refs(path))
    except BundleError as exc:
        if isinstance(exc.__context__, OSError):  # reading the staged copy back failed
            raise exc.__context__ from None
        raise UsageError(f"cannot write bundle: {exc}", option="variants") from None


def _publish_modes(root: Path) -> None:
    """The staging root is private (mkdtemp, 0700); give it the mode its subdirectories
    got from ``mkdir`` (0777 minus the umask), without touching the process umask."""
    os.chmod(root, stat.S_IMODE(os.stat(root / COMPONENT).st_mode))


def write_bundle(
    out: Path,
    variants: Sequence[VariantSpec],
    *,
    package_name: str,
    package_version: str = "1",
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
    zip: bool = False,
) -> Path:
    """Write ``variants`` as one bundle at ``out`` (a directory, or a zip file when
    ``zip``); an existing bundle there is replaced atomically. Returns ``out``.

    A file-system failure (disk full, I/O error, permission) raises ``PackageError``
    naming ``out``, the errno and the failing path; ``out`` then holds the old complete
    bundle or nothing (or, when only the final directory fsync failed, the new one)."""
    out = Path(out)
    if not variants:
        raise UsageError("write_bundle needs at least one variant", option="variants")
    names = [s.name for s in variants]
    if len({n.casefold() for n in names}) != len(names):
        raise UsageError(f"variant names repeat (case-insensitively): {names}", option="variants")
    if out.name.startswith(TMP_PREFIX):
        raise UsageError(f"{out}: names starting with {TMP_PREFIX!r} are reserved", option="out")
    head = {
        "package_name": package_name,
        "package_version": package_version,
        "description": description,
        "metadata": dict(metadata or {}),
    }
    try:
        _write(out, variants, head, zip)
    except OSError as exc:  # the file system failed: the target holds the old bundle or none
        raise PackageError(f"cannot write bundle {out}: {os_error_text(exc)}", path=out) from exc
    return out


def _write(out: Path, variants: Sequence[VariantSpec], head: dict[str, Any], zip: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out.parent)
    with staging_dir(out) as tmp, locked(tmp):
        root = tmp / "bundle" if zip else tmp
        root.mkdir(exist_ok=True)
        _stage(root, variants, head)
        _publish_modes(root)
        fsync_tree(root)
        if zip:
            write_zip(root, tmp / "bundle.zip")
            place_file(tmp / "bundle.zip", out)
        else:
            place_dir(tmp, out)
    if zip:
        shutil.rmtree(tmp, ignore_errors=True)
