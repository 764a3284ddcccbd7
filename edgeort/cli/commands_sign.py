"""``edgeort keygen | sign | verify``: Ed25519 bundle signatures from the command line
(the same functions as :mod:`edgeort.bundle.signing`; docs/security.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgeort.errors import UsageError

__all__ = ["COMMANDS"]

_BUNDLE = click.Path(exists=True, path_type=Path)


@click.command("keygen")
@click.option("-o", "--output", "private_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), metavar="KEY.pem",
              help="Where to write the private key (mode 0600); the public key goes "
                   "beside it as KEY.pub.pem.")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@click.option("--json", "as_json", is_flag=True, help="Print the key paths and key id as JSON.")
def keygen_command(private_path: Path, force: bool, as_json: bool) -> None:
    """Create an Ed25519 key pair for signing bundles."""
    from edgeort._fs import atomic_write_bytes
    from edgeort.bundle.signing import generate_keypair, key_id, load_trusted_keys

    public_path = private_path.with_name(private_path.stem + ".pub.pem")
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise UsageError(f"{path} exists; pass --force to overwrite it", option="--output")
    private_pem, public_pem = generate_keypair()
    try:
        atomic_write_bytes(private_path, private_pem)
        private_path.chmod(0o600)
        atomic_write_bytes(public_path, public_pem)
    except OSError as exc:
        raise UsageError(f"cannot write {private_path}: {exc}", option="--output") from None
    kid = key_id(next(iter(load_trusted_keys(public_pem).values())))
    if as_json:
        data = {"private_key": str(private_path), "public_key": str(public_path), "key_id": kid}
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"private key  {private_path} (keep it secret)")
    click.echo(f"public key   {public_path} (give it to devices: EDGEORT_TRUSTED_KEYS)")
    click.echo(f"key id       {kid}")


@click.command("sign")
@click.argument("bundle", type=_BUNDLE)
@click.option("--key", "key_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="KEY.pem",
              help="The private key (from 'edgeort keygen').")  # fmt: skip
@click.option("--sequence", type=click.IntRange(min=0),
              help="Release sequence; must grow with every release (default: max(unix time, "
                   "previous + 1)).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sign_command(bundle: Path, key_path: Path, sequence: int | None, as_json: bool) -> None:
    """Verify BUNDLE and add an Ed25519 signature to it (a zip is rewritten atomically)."""
    from edgeort.bundle import open_bundle
    from edgeort.bundle.signing import sign_bundle

    sign_bundle(bundle, key_path, sequence=sequence)
    signed = open_bundle(bundle, trusted_keys=())
    if as_json:
        click.echo(
            json.dumps({"bundle": str(bundle), "signed": True, "package": signed.package_name})
        )
        return
    click.echo(f"signed {bundle} ({signed.package_name} {signed.package_version})")


@click.command("verify")
@click.argument("bundle", type=_BUNDLE)
@click.option("--key", "keys", multiple=True, type=click.Path(exists=True, path_type=Path),
              metavar="KEY.pub.pem|DIR",
              help="A trusted public key file or a directory of them (repeatable); the "
                   "signature must verify with one. Default: EDGEORT_TRUSTED_KEYS, "
                   "if set.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_command(bundle: Path, keys: tuple[Path, ...], as_json: bool) -> None:
    """Check BUNDLE as edgeort.load() does before ORT reads a byte: manifest, every
    file's size and sha256, and (with keys) the signature. Exit 0 when it is intact."""
    import os

    from edgeort.bundle import open_bundle

    trusted: list[bytes | str] | None = [str(k) for k in keys] or None
    opened = open_bundle(bundle, trusted_keys=trusted)
    signed = bool(trusted) or bool(os.environ.get("EDGEORT_TRUSTED_KEYS"))
    files = sum(len(v.files) for v in opened.variants)
    if as_json:
        data = {
            "bundle": str(bundle),
            "ok": True,
            "package": opened.package_name,
            "version": opened.package_version,
            "variants": len(opened.variants),
            "files": files,
            "signature_checked": signed,
        }
        click.echo(json.dumps(data, indent=2))
        return
    sig = "signature verified" if signed else "signature not checked (no --key)"
    click.echo(
        f"OK: {bundle}: {opened.package_name} {opened.package_version}, "
        f"{len(opened.variants)} variant(s), {files} file(s) verified; {sig}"
    )


COMMANDS: list[click.Command] = [keygen_command, sign_command, verify_command]
