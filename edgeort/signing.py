"""Optional Ed25519 signatures for bundles (``pip install 'edgeort[signing]'``).

A signature covers ``manifest.json`` and ``model/component.json`` by sha256; the
manifest pins the component and the component pins every file's size and sha256, so
one signature authenticates every byte ORT reads. The payload also carries the package
name and version and a ``sequence`` that must never go down: the device remembers the
highest sequence it accepted per package (``<cache>/signing/sequences.json``) and
refuses older signed bundles (replay/rollback). Format: docs/bundle-format.md section 8;
threat model: docs/security.md. ``cryptography`` is imported only when needed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeort import _fs
from edgeort._dirs import cache_dir
from edgeort.bundle import Bundle, open_bundle, read_bundle, verify_bundle
from edgeort.bundle._cache import private_dir
from edgeort.bundle._json import canonical_json, compact_json, loads_strict, read_json_file
from edgeort.bundle._manifest import COMPONENT_JSON, MANIFEST_JSON, SIGNATURE_JSON
from edgeort.bundle._place import place_file
from edgeort.bundle._zip import write_zip
from edgeort.errors import BundleError, SignatureError, UsageError

__all__ = ["generate_keypair", "key_id", "load_trusted_keys", "sign_bundle", "verify_signature"]

log = logging.getLogger("edgeort.signing")

FORMAT = "edgeort.signature"
FORMAT_VERSION = 1
DOMAIN = b"edgeort.signature.v1\n"
MAX_SIGNATURE_BYTES = 64 * 1024
PAYLOAD_KEYS = (
    "component_sha256",
    "manifest_sha256",
    "package_name",
    "package_version",
    "sequence",
)
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
KeySpec = str | os.PathLike[str] | bytes | Sequence[bytes | str | os.PathLike[str]]


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise SignatureError(
            "bundle signatures need the 'cryptography' package: pip install 'edgeort[signing]'"
        ) from None
    return serialization, ed25519


def generate_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    serialization, ed25519 = _crypto()
    private = ed25519.Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def key_id(public_key: Any) -> str:
    """sha256 hex of the raw 32-byte Ed25519 public key."""
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _pem_bytes(value: bytes | str | os.PathLike[str]) -> tuple[bytes, str]:
    """(PEM bytes, where they came from): PEM text is taken as is, anything else is a path."""
    if isinstance(value, bytes):
        return value, "key bytes"
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode("ascii", "replace"), "key text"
    path = Path(value)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise UsageError(
            f"cannot read key file {path}: {exc.strerror or exc}", option="trusted_keys"
        ) from None


def _public_key(pem: bytes, where: str) -> Any:
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{where}: not a PEM public key ({exc})", option="trusted_keys") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise UsageError(
            f"{where}: a {type(key).__name__}, not an Ed25519 public key", option="trusted_keys"
        )
    return key


def load_trusted_keys(spec: KeySpec) -> dict[str, Any]:
    """Trusted Ed25519 public keys by key id, from PEM bytes/text, a PEM file, a
    directory of ``*.pem``/``*.pub`` files, or a sequence of those."""
    single = isinstance(spec, bytes | str | os.PathLike)
    items: list[bytes | str | os.PathLike[str]] = [spec] if single else list(spec)  # type: ignore[list-item]
    keys: dict[str, Any] = {}
    for item in items:
        if (
            not isinstance(item, bytes)
            and not str(item).lstrip().startswith("-----BEGIN")
            and Path(item).is_dir()
        ):
            files = sorted(p for p in Path(item).iterdir() if p.suffix in (".pem", ".pub"))
            if not files:
                raise UsageError(
                    f"trusted key directory {item} holds no *.pem or *.pub file",
                    option="trusted_keys",
                )
            found = [_pem_bytes(p) for p in files]
        else:
            found = [_pem_bytes(item)]
        for pem, where in found:
            key = _public_key(pem, where)
            keys[key_id(key)] = key
    if not keys:
        raise UsageError("no trusted public keys given", option="trusted_keys")
    return keys


def _payload(bundle: Bundle, sequence: int) -> dict[str, Any]:
    digests = {
        "manifest_sha256": bundle.manifest_sha256 or _sha256_file(bundle.root / MANIFEST_JSON),
        "component_sha256": bundle.component_sha256 or _sha256_file(bundle.root / COMPONENT_JSON),
    }
    return {
        **digests,
        "package_name": bundle.package_name,
        "package_version": bundle.package_version,
        "sequence": sequence,
    }


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _private_key(pem: bytes | str | os.PathLike[str], password: bytes | None) -> Any:
    serialization, ed25519 = _crypto()
    data, where = _pem_bytes(pem)
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"{where}: not a usable PEM private key ({exc})", option="private_key"
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise UsageError(
            f"{where}: a {type(key).__name__}, not an Ed25519 private key", option="private_key"
        )
    return key


def _previous_sequence(root: Path) -> int:
    try:
        doc = loads_strict((root / SIGNATURE_JSON).read_bytes(), name=SIGNATURE_JSON)
        value = doc["payload"]["sequence"]
    except (OSError, BundleError, KeyError, TypeError):
        return -1
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _signature_doc(bundle: Bundle, private: Any, sequence: int | None) -> bytes:
    if sequence is None:
        sequence = max(int(time.time()), _previous_sequence(bundle.root) + 1)
    elif isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence < 2**63:
        raise UsageError(
            f"sequence must be an integer in [0, 2**63), got {sequence!r}", option="sequence"
        )
    payload = _payload(bundle, sequence)
    signature = private.sign(DOMAIN + compact_json(payload))
    doc = {
        "algorithm": "ed25519",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "key_id": key_id(private.public_key()),
        "payload": payload,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return canonical_json(doc)


def sign_bundle(
    path: str | os.PathLike[str],
    private_key_pem: bytes | str | os.PathLike[str],
    *,
    sequence: int | None = None,
    password: bytes | None = None,
) -> Path:
    """Verify the bundle at ``path`` (directory or zip) and add ``signature.json``.

    ``private_key_pem`` is PEM bytes/text or a PEM file. ``sequence`` defaults to
    ``max(unix time, previous sequence + 1)``; it must grow with every release of the
    package. A zip is rewritten atomically with the signature as a member.
    """
    path = Path(path)
    private = _private_key(private_key_pem, password)
    if path.is_file():
        bundle = open_bundle(path, trusted_keys=())
        doc = _signature_doc(bundle, private, sequence)
        with _fs.staging_dir(path) as tmp:
            write_zip(bundle.root, tmp / "signed.zip", extra={SIGNATURE_JSON: doc})
            place_file(tmp / "signed.zip", path)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        bundle = read_bundle(path)
        verify_bundle(bundle)
        _fs.atomic_write_bytes(
            bundle.root / SIGNATURE_JSON, _signature_doc(bundle, private, sequence)
        )
    log.info("signed %s", path)
    return path


def _read_signature(bundle: Bundle) -> dict[str, Any]:
    path = bundle.root / SIGNATURE_JSON
    if not os.path.lexists(path):
        raise SignatureError(
            f"bundle {bundle.source} is not signed, but trusted keys are configured", path=path
        )
    try:
        doc, _ = read_json_file(path, name=SIGNATURE_JSON, max_bytes=MAX_SIGNATURE_BYTES)
    except BundleError as exc:
        raise SignatureError(str(exc), path=path) from None
    problems = _signature_problems(doc)
    if problems:
        raise SignatureError(
            f"{SIGNATURE_JSON} in {bundle.source}: {'; '.join(problems)}", path=path
        )
    return doc  # type: ignore[no-any-return]


def _signature_problems(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return ["$: expected an object"]
    expected = {"algorithm": "ed25519", "format": FORMAT, "format_version": FORMAT_VERSION}
    problems = [
        f"$.{k}: expected {v!r}"
        for k, v in expected.items()
        if doc.get(k) != v or isinstance(doc.get(k), bool)
    ]
    if set(doc) != {*expected, "key_id", "payload", "signature"}:
        problems.append(f"$: keys {sorted(doc)} differ from the signature format")
    if not isinstance(doc.get("key_id"), str) or not _HEX64.match(doc["key_id"]):
        problems.append("$.key_id: expected 64 lowercase hex digits")
    payload = doc.get("payload")
    if not isinstance(payload, dict) or set(payload) != set(PAYLOAD_KEYS):
        return [*problems, f"$.payload: expected an object with keys {list(PAYLOAD_KEYS)}"]
    for key in ("manifest_sha256", "component_sha256"):
        if not isinstance(payload[key], str) or not _HEX64.match(payload[key]):
            problems.append(f"$.payload.{key}: expected 64 lowercase hex digits")
    for key in ("package_name", "package_version"):
        if not isinstance(payload[key], str):
            problems.append(f"$.payload.{key}: expected a string")
    seq = payload["sequence"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        problems.append("$.payload.sequence: expected an integer in [0, 2**63)")
    try:
        if len(base64.b64decode(doc.get("signature", ""), validate=True)) != 64:
            problems.append("$.signature: expected base64 of 64 bytes")
    except (binascii.Error, TypeError, ValueError):
        problems.append("$.signature: not base64")
    return problems


def _check_sequence(payload: dict[str, Any]) -> None:
    """Refuse a sequence lower than the highest accepted for this package (replay)."""
    store = cache_dir() / "signing"
    why = private_dir(store)
    if why:
        log.warning("replay protection disabled (cannot keep sequence numbers): %s", why)
        return
    path = store / "sequences.json"
    try:
        seen = loads_strict(path.read_bytes(), name=str(path))
    except FileNotFoundError:
        seen = {}
    except (OSError, BundleError) as exc:
        log.warning("sequence store %s unreadable, starting afresh: %s", path, exc)
        seen = {}
    seen = seen if isinstance(seen, dict) else {}
    name, seq = payload["package_name"], payload["sequence"]
    last = seen.get(name) if isinstance(seen.get(name), dict) else {}
    last_seq = last.get("sequence", -1) if isinstance(last.get("sequence"), int) else -1
    if seq < last_seq:
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


def verify_signature(bundle: Bundle, trusted_public_keys: KeySpec) -> str:
    """Check ``bundle``'s signature against the trusted keys; return the signer's key id.

    Raises SignatureError when the bundle is unsigned, signed by an untrusted key,
    the signature or payload was modified, the signature belongs to other contents
    (copied from another bundle), or an older sequence is replayed.
    """
    keys = load_trusted_keys(trusted_public_keys)
    from cryptography.exceptions import InvalidSignature

    doc = _read_signature(bundle)
    kid, payload = doc["key_id"], doc["payload"]
    key = keys.get(kid)
    if key is None:
        raise SignatureError(
            f"{bundle.source}: signed with key {kid[:16]}..., "
            f"which is not one of the {len(keys)} trusted keys",
            path=bundle.root / SIGNATURE_JSON,
        )
    try:
        key.verify(base64.b64decode(doc["signature"]), DOMAIN + compact_json(payload))
    except InvalidSignature:
        raise SignatureError(
            f"{bundle.source}: signature does not verify with key {kid[:16]}... "
            "(signature.json was modified)",
            path=bundle.root / SIGNATURE_JSON,
        ) from None
    expected = _payload(bundle, payload["sequence"])
    differ = [k for k in PAYLOAD_KEYS if expected[k] != payload[k]]
    if differ:
        raise SignatureError(
            f"{bundle.source}: the signature is for other contents ({', '.join(differ)} differ): "
            "the manifest was modified or the signature copied from another bundle",
            path=bundle.root / SIGNATURE_JSON,
        )
    _check_sequence(payload)
    return str(kid)
