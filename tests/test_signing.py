"""Ed25519 bundle signatures (issue "Trust"): wrong key, stripped, modified, copied and
replayed signatures are SignatureErrors; unsigned bundles load when no keys are set."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import zipfile
from pathlib import Path

import onnxruntime
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edgeort.bundle import open_bundle
from edgeort.bundle.signing import generate_keypair, sign_bundle, verify_signature
from edgeort.errors import IntegrityError, SignatureError, UsageError
from tests.test_bundle_support import forge, sample_bundle

KEYS = generate_keypair()
OTHER = generate_keypair()


@pytest.fixture(autouse=True)
def _no_ort(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ort(*args: object, **kwargs: object) -> None:
        raise AssertionError("ORT must not be called while checking signatures")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_ort)


@pytest.fixture
def signed(tmp_path: Path) -> Path:
    return sign_bundle(sample_bundle(tmp_path), KEYS[0], sequence=10)


def _flipped(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def _sig(root: Path) -> dict:
    return json.loads((root / "signature.json").read_bytes())


def test_keypair_is_pem() -> None:
    private, public = KEYS
    assert private.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_signed_bundle_verifies(signed: Path) -> None:
    doc = _sig(signed)
    assert doc["algorithm"] == "ed25519" and doc["payload"]["sequence"] == 10
    assert doc["payload"]["package_name"] == "demo"
    b = open_bundle(signed, trusted_keys=[KEYS[1]])
    assert verify_signature(b, [OTHER[1], KEYS[1]]) == doc["key_id"]


def test_keys_from_env_file_and_directory(
    signed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keydir = tmp_path / "keys"
    keydir.mkdir()
    (keydir / "release.pem").write_bytes(KEYS[1])
    monkeypatch.setenv("EDGEORT_TRUSTED_KEYS", str(keydir / "release.pem"))
    open_bundle(signed)
    monkeypatch.setenv("EDGEORT_TRUSTED_KEYS", str(keydir))
    open_bundle(signed)
    (keydir / "release.pem").write_bytes(OTHER[1])
    with pytest.raises(SignatureError, match="not one of the 1 trusted keys"):
        open_bundle(signed)


def test_unsigned_is_fine_without_keys_and_refused_with_keys(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    assert open_bundle(root).package_name == "demo"
    with pytest.raises(SignatureError, match="not signed"):
        open_bundle(root, trusted_keys=[KEYS[1]])


def test_stripped_signature(signed: Path) -> None:
    (signed / "signature.json").unlink()
    with pytest.raises(SignatureError, match="not signed"):
        open_bundle(signed, trusted_keys=KEYS[1])


def test_wrong_key(signed: Path) -> None:
    with pytest.raises(SignatureError, match="not one of the 1 trusted keys"):
        open_bundle(signed, trusted_keys=[OTHER[1]])


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["payload"].update(package_version="2"), "does not verify"),
        (lambda d: d["payload"].update(sequence=11), "does not verify"),
        (lambda d: d.update(signature=_flipped(d["signature"])), "does not verify"),
        (lambda d: d.update(signature="!!"), "not base64"),
        (lambda d: d.update(key_id="0" * 64), "not one of"),
        (lambda d: d.update(algorithm="rsa"), "algorithm"),
        (lambda d: d.update(extra=1), "extra: unknown key"),
        (lambda d: d["payload"].pop("sequence"), "payload"),
    ],
)
def test_modified_signature_file(signed: Path, edit: object, match: str) -> None:
    doc = _sig(signed)
    edit(doc)  # type: ignore[operator]
    (signed / "signature.json").write_text(json.dumps(doc))
    with pytest.raises(SignatureError, match=match):
        open_bundle(signed, trusted_keys=[KEYS[1]])


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"a": 1, "a": 1}', b" " * 70_000])
def test_malformed_signature_json(signed: Path, raw: bytes) -> None:
    (signed / "signature.json").write_bytes(raw)
    with pytest.raises(SignatureError):
        open_bundle(signed, trusted_keys=[KEYS[1]])


def test_forged_manifest_is_caught_by_signature(signed: Path) -> None:
    forge(signed, manifest=lambda m: m.update(package_version="9"))
    open_bundle(signed)  # without keys the forgery is self-consistent
    with pytest.raises(SignatureError, match=r"other contents.*manifest_sha256"):
        open_bundle(signed, trusted_keys=[KEYS[1]])


def test_signature_copied_from_another_bundle(tmp_path: Path, signed: Path) -> None:
    other = sign_bundle(sample_bundle(tmp_path / "o", version="2"), KEYS[0], sequence=11)
    shutil.copyfile(other / "signature.json", signed / "signature.json")
    with pytest.raises(SignatureError, match="copied from another bundle"):
        open_bundle(signed, trusted_keys=[KEYS[1]])


def test_replay_of_older_sequence(tmp_path: Path, signed: Path) -> None:
    newer = sign_bundle(sample_bundle(tmp_path / "n", version="2"), KEYS[0], sequence=20)
    open_bundle(signed, trusted_keys=[KEYS[1]])
    open_bundle(newer, trusted_keys=[KEYS[1]])
    open_bundle(newer, trusted_keys=[KEYS[1]])  # the same bundle again is fine
    with pytest.raises(SignatureError, match=r"replayed bundle.*sequence 10.*sequence 20"):
        open_bundle(signed, trusted_keys=[KEYS[1]])
    reused = sign_bundle(sample_bundle(tmp_path / "r", version="3"), KEYS[0], sequence=20)
    with pytest.raises(SignatureError, match="already accepted for different contents"):
        open_bundle(reused, trusted_keys=[KEYS[1]])


def test_unusable_sequence_store_warns(
    signed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "f"
    blocker.write_text("")
    monkeypatch.setenv("EDGEORT_CACHE_DIR", str(blocker / "c"))
    with caplog.at_level(logging.WARNING):
        open_bundle(signed, trusted_keys=[KEYS[1]])
    assert "replay protection disabled" in caplog.text


def test_default_sequence_grows(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    sign_bundle(root, KEYS[0], sequence=2**40)
    sign_bundle(root, KEYS[0])
    assert _sig(root)["payload"]["sequence"] == 2**40 + 1


def test_sign_zip(tmp_path: Path) -> None:
    z = sample_bundle(tmp_path, name="b.zip", zip=True)
    with pytest.raises(SignatureError, match="not signed"):
        open_bundle(z, trusted_keys=[KEYS[1]])
    key_file = tmp_path / "release.key"
    key_file.write_bytes(KEYS[0])
    sign_bundle(z, key_file, sequence=5)
    with zipfile.ZipFile(z) as zf:
        assert "signature.json" in zf.namelist()
    assert open_bundle(z, trusted_keys=[KEYS[1]]).source == z


def test_sign_refuses_tampered_bundle(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path)
    (root / "model/cpu-fp32/model.onnx").write_bytes(b"x")
    with pytest.raises(IntegrityError):
        sign_bundle(root, KEYS[0])
    assert not (root / "signature.json").exists()


def test_key_problems_are_usage_errors(tmp_path: Path, signed: Path) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_pub = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(UsageError, match="not an Ed25519 public key"):
        open_bundle(signed, trusted_keys=[p256_pub])
    p256_priv = p256.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(UsageError, match="not an Ed25519 private key"):
        sign_bundle(signed, p256_priv)
    with pytest.raises(UsageError, match="not a PEM public key"):
        open_bundle(
            signed, trusted_keys=[b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no"):
        open_bundle(signed, trusted_keys=str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="cannot read key file"):
        open_bundle(signed, trusted_keys=str(tmp_path / "missing.pem"))
