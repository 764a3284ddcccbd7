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
from edgeort._fs import sha256_file
from edgeort.bundle import Bundle, open_bundle
from edgeort.bundle._fields import Fields
from edgeort.bundle._json import (
    Problems,
    canonical_json,
    compact_json,
    io_cause,
    loads_strict,
    read_json_file,
)
from edgeort.bundle._manifest import COMPONENT_JSON, MANIFEST_JSON, SIGNATURE_JSON
from edgeort.bundle._place import locked, place_file
from edgeort.bundle._replay import check_sequence
from edgeort.bundle._zip import write_zip
from edgeort.errors import BundleError, PackageError, SignatureError, UsageError

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
    items: list[bytes | str | os.PathLike[str]]
    items = [spec] if isinstance(spec, bytes | str | os.PathLike) else list(spec)
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
        "manifest_sha256": bundle.manifest_sha256 or sha256_file(bundle.root / MANIFEST_JSON),
        "component_sha256": bundle.component_sha256 or sha256_file(bundle.root / COMPONENT_JSON),
    }
    return {
        **digests,
        "package_name": bundle.package_name,
        "package_version": bundle.package_version,
        "sequence": sequence,
    }


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
    package. A zip is rewritten atomically with the signature as a member. A
    file-system failure while signing raises PackageError naming the errno; the
    bundle is then unchanged.
    """
    path = Path(path)
    private = _private_key(private_key_pem, password)
    try:
        _sign(path, private, sequence)
    except OSError as exc:
        raise PackageError(f"cannot sign {path}: {_fs.os_error_text(exc)}", path=path) from exc
    log.info("signed %s", path)
    return path


def _sign(path: Path, private: Any, sequence: int | None) -> None:
    bundle = open_bundle(path, trusted_keys=())  # verified; an existing signature not checked
    doc = _signature_doc(bundle, private, sequence)
    if path.is_file():
        with _fs.staging_dir(path) as tmp, locked(tmp):
            write_zip(bundle.root, tmp / "signed.zip", extra={SIGNATURE_JSON: doc})
            place_file(tmp / "signed.zip", path)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        _fs.atomic_write_bytes(bundle.root / SIGNATURE_JSON, doc)


def _read_signature(bundle: Bundle) -> tuple[str, dict[str, Any], bytes]:
    """(key id, payload, signature bytes) from signature.json, or SignatureError."""
    path = bundle.root / SIGNATURE_JSON
    if not os.path.lexists(path):
        raise SignatureError(
            f"bundle {bundle.source} is not signed, but trusted keys are configured", path=path
        )
    try:
        doc, _ = read_json_file(path, name=SIGNATURE_JSON, max_bytes=MAX_SIGNATURE_BYTES)
    except BundleError as exc:
        if io_cause(exc) is not None:  # a disk error is not a bad signature
            raise
        raise SignatureError(str(exc), path=path) from None
    problems = Problems(f"{SIGNATURE_JSON} in {bundle.source}", path)
    f = Fields.of(doc, "$", problems)
    if f is None:
        problems.raise_if_any(SignatureError)
    assert f is not None
    f.only(("algorithm", "format", "format_version", "key_id", "payload", "signature"))
    for key, value in (("algorithm", "ed25519"), ("format", FORMAT)):
        if f.data.get(key) != value:
            problems.expect(f.at(key), f.data.get(key), repr(value))
    f.integer("format_version", minimum=FORMAT_VERSION, maximum=FORMAT_VERSION)
    kid = _hex(f, "key_id")
    payload = f.obj("payload")
    if payload is not None:
        payload.only(PAYLOAD_KEYS)
        for key in ("manifest_sha256", "component_sha256"):
            _hex(payload, key)
        payload.text("package_name", max_len=128)
        payload.text("package_version", max_len=64)
        payload.integer("sequence")
    signature = b""
    try:
        signature = base64.b64decode(f.text("signature", max_len=128) or "", validate=True)
    except binascii.Error:
        problems.add(f.at("signature"), "not base64")
    if len(signature) != 64 and "signature" in f.data:
        problems.add(f.at("signature"), "expected base64 of a 64-byte Ed25519 signature")
    problems.raise_if_any(SignatureError)
    assert kid is not None and payload is not None
    return kid, payload.data, signature


def _hex(f: Fields, key: str) -> str | None:
    value = f.text(key, max_len=64)
    if value is not None and not _HEX64.match(value):
        f.problems.add(f.at(key), "expected 64 lowercase hex digits")
        return None
    return value


def verify_signature(bundle: Bundle, trusted_public_keys: KeySpec) -> str:
    """Check ``bundle``'s signature against the trusted keys; return the signer's key id.

    Raises SignatureError when the bundle is unsigned, signed by an untrusted key,
    the signature or payload was modified, the signature belongs to other contents
    (copied from another bundle), or an older sequence is replayed.
    """
    keys = load_trusted_keys(trusted_public_keys)
    from cryptography.exceptions import InvalidSignature

    kid, payload, signature = _read_signature(bundle)
    key = keys.get(kid)
    if key is None:
        raise SignatureError(
            f"{bundle.source}: signed with key {kid[:16]}..., "
            f"which is not one of the {len(keys)} trusted keys",
            path=bundle.root / SIGNATURE_JSON,
        )
    try:
        key.verify(signature, DOMAIN + compact_json(payload))
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
    check_sequence(payload)
    return str(kid)
