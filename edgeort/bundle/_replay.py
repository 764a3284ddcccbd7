"""The seen-sequence store that makes signed-bundle replay detectable.

``<cache>/signing/sequences.json`` maps a package name to the highest signature
``sequence`` this device accepted (with that bundle's manifest digest and version).
A lower sequence is a replay or rollback; the same sequence with other contents is a
signer reusing a number. An unusable store is logged and protection is skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgeort import _fs
from edgeort._dirs import cache_dir
from edgeort.bundle._cache import private_dir
from edgeort.bundle._fields import is_int
from edgeort.bundle._json import canonical_json, loads_strict
from edgeort.errors import BundleError, SignatureError

__all__ = ["check_sequence"]

log = logging.getLogger("edgeort.signing")


def _load_sequences(path: Path) -> dict[str, Any]:
    try:
        seen = loads_strict(path.read_bytes(), name=str(path))
    except FileNotFoundError:
        return {}
    except (OSError, BundleError) as exc:
        log.warning("sequence store %s unreadable, starting afresh: %s", path, exc)
        return {}
    return seen if isinstance(seen, dict) else {}


def check_sequence(payload: dict[str, Any]) -> None:
    """Refuse a sequence lower than the highest accepted for this package (replay)."""
    store = cache_dir() / "signing"
    why = private_dir(store)
    if why:
        log.warning("replay protection disabled (cannot keep sequence numbers): %s", why)
        return
    path = store / "sequences.json"
    seen = _load_sequences(path)
    name, seq = payload["package_name"], payload["sequence"]
    last = seen.get(name)
    last = last if isinstance(last, dict) and is_int(last.get("sequence")) else {"sequence": -1}
    if seq < (last_seq := last["sequence"]):
        raise SignatureError(
            f"replayed bundle: {name!r} signed with sequence {seq}, but sequence {last_seq} "
            f"(version {last.get('package_version')!r}) was already accepted on this device"
        )
    if seq == last_seq:
        if last.get("manifest_sha256") != payload["manifest_sha256"]:
            raise SignatureError(
                f"{name!r}: sequence {seq} was already accepted for different contents"
            )
        return
    seen[name] = {k: payload[k] for k in ("sequence", "manifest_sha256", "package_version")}
    try:
        _fs.atomic_write_bytes(path, canonical_json(seen))
    except OSError as exc:
        log.warning("cannot record sequence in %s: %s", path, exc)
