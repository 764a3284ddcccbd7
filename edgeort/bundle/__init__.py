"""The bundle: an ONNX Runtime model package plus edgeort's integrity data.

Format: docs/bundle-format.md. Threat model: docs/security.md. Device side: imports only
the stdlib (``cryptography`` lazily, for signatures); never onnx.

- ``write_bundle(out, variants, ...)`` writes one bundle directory (or zip) atomically.
- ``open_bundle(path)`` opens a directory or zip and verifies every byte before
  returning; ``verify_bundle(bundle)`` re-checks one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeort._dirs import cache_dir
from edgeort._fs import os_error_text
from edgeort._log import get_logger
from edgeort.bundle._json import io_cause
from edgeort.bundle._manifest import Bundle, read_bundle
from edgeort.bundle._model import FileEntry, TensorSpec, Variant
from edgeort.bundle._verify import verify_bundle
from edgeort.errors import BundleError, CacheError, IntegrityError

__all__ = [
    "Bundle",
    "FileEntry",
    "TensorSpec",
    "Variant",
    "VariantSpec",
    "clean_leftovers",
    "locked",
    "open_bundle",
    "read_bundle",
    "verify_bundle",
    "write_bundle",
]

log = get_logger("edgeort.bundle")

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle._place import clean_leftovers, locked
    from edgeort.bundle._write import VariantSpec, write_bundle


def __getattr__(name: str) -> Any:
    """The writer (build side) is imported on first use: the device's read path never
    loads it. ``clean_leftovers`` and ``locked`` are the staging helpers the packager
    shares (so nothing outside ``edgeort.bundle`` imports its private modules)."""
    if name in {"VariantSpec", "write_bundle"}:
        from edgeort.bundle import _write

        return getattr(_write, name)
    if name in {"clean_leftovers", "locked"}:  # staging helpers the packager shares
        from edgeort.bundle import _place

        return getattr(_place, name)
    raise AttributeError(f"module 'edgeort.bundle' has no attribute {name!r}")


TrustedKeys = str | os.PathLike[str] | bytes | list[bytes | str] | tuple[bytes | str, ...]


def _open_zip(path: Path, verify: bool) -> Bundle:
    from edgeort.bundle._zip import extract_zip  # zipfile and the cache: a zip bundle only

    bundle = read_bundle(extract_zip(path), source=path)
    if not verify:
        return bundle
    try:
        verify_bundle(bundle)
    except IntegrityError as exc:  # the cached extraction was altered: extract afresh
        log.warning("re-extracting %s: cached copy failed verification: %s", path, exc)
        bundle = read_bundle(extract_zip(path, force=True), source=path)
        verify_bundle(bundle)
    return bundle


def _fs_error(path: Path, is_file: bool, exc: OSError) -> BundleError | CacheError:
    name = exc.filename
    failed = Path(os.fsdecode(name)) if isinstance(name, (str, bytes, os.PathLike)) else None
    if is_file and failed != path:  # a zip: the cache (extracting, reading back) failed
        where = failed or cache_dir() / "bundles"
        return CacheError(
            f"cannot extract {path} into the cache or read it there: {os_error_text(exc)}",
            path=where,
        )
    return BundleError(f"cannot read bundle {path}: {os_error_text(exc)}", path=path)


def _open(path: Path, is_file: bool, verify: bool) -> Bundle:
    if is_file:
        from edgeort.bundle._zip import is_zip

        if not is_zip(path):
            raise BundleError(f"{path}: neither a bundle directory nor a zip file", path=path)
        return _open_zip(path, verify)
    bundle = read_bundle(path)
    if verify:
        verify_bundle(bundle)
    return bundle


def open_bundle(
    path: str | os.PathLike[str], *, verify: bool = True, trusted_keys: TrustedKeys | None = None
) -> Bundle:
    """Open a bundle directory or ``.zip`` (extracted into the cache, keyed by its sha256).

    With ``verify`` every file is checked (closed list, links, sizes, sha256, external
    data) before this returns. When trusted keys are configured (``trusted_keys``, or the
    ``EDGEORT_TRUSTED_KEYS`` file/directory of PEM public keys), the bundle must carry a
    valid, fresh signature (``edgeort.bundle.signing``), whatever ``verify`` says.

    A file-system failure raises ``CacheError`` (writing the zip's extraction into the
    cache, or reading it back) or ``BundleError`` (reading the bundle), naming the errno
    and the path; never ``IntegrityError``, which means the bytes are wrong.
    """
    path = Path(path)
    is_file = False
    try:
        try:
            os.lstat(path)
        except FileNotFoundError:
            raise BundleError(f"no bundle at {path}", path=path) from None
        is_file = path.is_file()
        bundle = _open(path, is_file, verify)
    except OSError as exc:  # the file system failed while reading or extracting
        raise _fs_error(path, is_file, exc) from exc
    except BundleError as exc:  # read_bundle/verify_bundle name I/O failures themselves;
        cause = io_cause(exc)  # in a zip's extraction they are the cache's
        if cause is None or not is_file:
            raise
        raise _fs_error(path, is_file, cause) from cause
    if trusted_keys is None:
        trusted_keys = os.environ.get("EDGEORT_TRUSTED_KEYS") or None
    if trusted_keys:
        from edgeort.bundle.signing import verify_signature

        verify_signature(bundle, trusted_keys)
    return bundle
