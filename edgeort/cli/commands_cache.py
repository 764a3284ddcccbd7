"""``edgeort cache dir | clear``: where edgeort keeps what it can rebuild (tune results,
extracted zip bundles, EP caches), and removing it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import click

from edgeort.errors import CacheError

__all__ = ["COMMANDS"]

_WHAT = {
    "tune": "settings saved by 'edgeort tune'",
    "bundles": "zip bundles extracted by edgeort.load()",
    "ep": "EP compiled-model caches",
    "runtimes": "target runtimes edgeort installed",
    "verified.json": "remembered file digests of verified bundles",
    "profile-tables.json": "parsed built-in profile tables",
    "plans": "load() decisions kept per bundle on this host (edgeort.runtime.plans)",
    "signing": "accepted signature sequences (replay protection; kept by clear)",
}
# What "clear" removes: what edgeort rebuilds by itself. The accepted signature
# sequences are replay protection, not a cache; other entries are not edgeort's to judge.
CLEARED = frozenset(_WHAT) - {"signing"}


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total


def _entries(root: Path) -> list[dict[str, object]]:
    if not root.is_dir():
        return []
    return [
        {
            "name": p.name,
            "path": str(p),
            "bytes": _size(p) if p.is_dir() else p.lstat().st_size,
            "what": _WHAT.get(p.name, ""),
        }
        for p in sorted(root.iterdir())
    ]


@click.group("cache")
def cache() -> None:
    """Show or clear edgeort's cache (EDGEORT_CACHE_DIR overrides where it is)."""


@cache.command("dir")
@click.option("--json", "as_json", is_flag=True, help="Print the path and its parts as JSON.")
def cache_dir_command(as_json: bool) -> None:
    """Print the cache directory, and what each part holds."""
    from edgeort._dirs import cache_dir

    root = cache_dir()
    entries = _entries(root)
    if as_json:
        click.echo(json.dumps({"path": str(root), "entries": entries}, indent=2))
        return
    click.echo(str(root))
    for e in entries:
        what = f"  ({e['what']})" if e["what"] else ""
        mib = int(e["bytes"]) / 2**20  # type: ignore[call-overload]
        slash = "/" if Path(str(e["path"])).is_dir() else ""
        click.echo(f"  {e['name']}{slash}  {mib:.1f} MiB{what}")


@cache.command("clear")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def cache_clear_command(as_json: bool) -> None:
    """Remove what edgeort rebuilds by itself: tune results, extracted bundles, EP
    caches, installed runtimes, remembered digests and profile tables. The accepted
    signature sequences (replay protection) are kept."""
    from edgeort._dirs import cache_dir

    root = cache_dir()
    removed: list[str] = []
    for e in _entries(root):
        if e["name"] not in CLEARED:
            continue
        path = Path(str(e["path"]))
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            raise CacheError(f"cannot remove {path}: {exc.strerror or exc}", path=path) from None
        removed.append(str(e["name"]))
    kept = [str(e["name"]) for e in _entries(root)]
    if as_json:
        click.echo(json.dumps({"path": str(root), "removed": removed, "kept": kept}))
        return
    what = ", ".join(removed) if removed else "nothing to remove"
    click.echo(f"cleared {root}: {what}" + (f" (kept: {', '.join(kept)})" if kept else ""))


COMMANDS: list[click.Command] = [cache]
