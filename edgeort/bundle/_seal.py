"""The manifest's self-digest (docs/bundle-format.md section 3).

``additional_metadata.edgeort.self_sha256`` is the sha256 of the exact bytes of
``manifest.json`` with that value replaced by 64 zeros. Nothing else covers the
manifest (it is the root of the digest chain), so without it a byte flip inside
``manifest.json`` that leaves valid JSON went unnoticed. It detects corruption and naive
edits only: anyone who can write the file can recompute it. Authenticity needs a
signature (``edgeort.bundle.signing``).

The field is found in the raw bytes, not re-serialised: exactly one
``"self_sha256": "<64 lowercase hex>"`` (JSON whitespace allowed around the colon) must
occur in the file, and its value must be the one the parser read.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from edgeort.errors import BundleError, IntegrityError

__all__ = ["SELF_KEY", "ZEROS", "seal_manifest", "self_digest"]

SELF_KEY = "self_sha256"
ZEROS = "0" * 64
_FIELD = re.compile(rb'"self_sha256"[ \t\r\n]*:[ \t\r\n]*"([0-9a-f]{64})"')
_NAME = "manifest.json"
_AT = f"additional_metadata.edgeort.{SELF_KEY}"


def _one_field(data: bytes) -> re.Match[bytes] | None:
    matches = list(_FIELD.finditer(data))
    return matches[0] if len(matches) == 1 else None


def _zeroed_digest(data: bytes, match: re.Match[bytes]) -> str:
    start, end = match.span(1)
    return hashlib.sha256(data[:start] + ZEROS.encode() + data[end:]).hexdigest()


def self_digest(data: bytes, recorded: str, *, path: Path | str = _NAME) -> str:
    """Check the self-digest of the manifest bytes ``data`` whose parsed ``self_sha256``
    is ``recorded``; return it. Raise IntegrityError naming manifest.json (``path``)
    otherwise."""
    count = len(_FIELD.findall(data))
    match = _one_field(data)
    if match is None or match.group(1).decode() != recorded:
        where = "once" if count == 1 else f"once (found {count} times)"
        raise IntegrityError(
            f'{_NAME}: $.{_AT} must appear {where} as "{SELF_KEY}": "<64 hex digits>" '
            f"with the value {recorded}: the file was altered",
            path=path,
        )
    got = _zeroed_digest(data, match)
    if got != recorded:
        raise IntegrityError(
            f"{_NAME}: sha256 {got} (with $.{_AT} zeroed) differs from the recorded "
            f"{recorded}: the manifest was altered or corrupted",
            path=path,
        )
    return got


def seal_manifest(data: bytes) -> bytes:
    """``data`` with its one ``self_sha256`` value replaced by the self-digest (what the
    writer does after writing zeros there). BundleError unless the field occurs once."""
    match = _one_field(data)
    if match is None:
        raise BundleError(
            f'{_NAME}: expected exactly one "{SELF_KEY}": "<64 hex digits>" field to seal',
            path=_NAME,
        )
    start, end = match.span(1)
    return data[:start] + _zeroed_digest(data, match).encode() + data[end:]
