"""Directory trees as ``{relative posix path: bytes}``: how bundles, models and data
travel between the submitting machine and the farm's workers.

Only regular files travel; a link or a special file is refused, and every path is
checked with the bundle's path rules (``docs/bundle-format.md`` section 6) before a byte
is written, so a tree cannot escape the directory it is unpacked into.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from edgeort.errors import IntegrityError, UsageError

__all__ = ["Tree", "read_tree", "tree_digest", "write_tree"]

Tree = dict[str, bytes]


def read_tree(root: Path) -> Tree:
    """Every regular file under ``root`` (a file: itself, under its own name)."""
    root = Path(root)
    if root.is_file():
        return {root.name: root.read_bytes()}
    if not root.is_dir():
        raise UsageError(f"{root}: no such file or directory", option="path")
    out: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, name)
            mode = os.lstat(path).st_mode
            rel = path.relative_to(root).as_posix()
            if not stat.S_ISREG(mode):
                raise UsageError(f"{root}: {rel} is not a regular file", option="path")
            out[rel] = path.read_bytes()
    return out


def write_tree(tree: Mapping[str, bytes], dest: Path) -> Path:
    """Write ``tree`` under ``dest`` (created); every path is checked first."""
    from edgeort.bundle._paths import path_problem, twin_problems

    problems = [f"{rel!r} {why}" for rel in tree if (why := path_problem(rel))]
    problems += twin_problems(tree)
    if problems:
        raise IntegrityError(f"received tree: path {problems[0]}", path=dest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel, data in tree.items():
        if not isinstance(data, bytes):
            raise IntegrityError(f"received tree: {rel!r} is not bytes", path=dest)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as fh:
            fh.write(data)
    return dest


def tree_digest(tree: Mapping[str, bytes]) -> str:
    """sha256 over the sorted (path, sha256 of bytes) pairs: names the whole tree."""
    h = hashlib.sha256()
    for rel in sorted(tree):
        h.update(rel.encode() + b"\0" + hashlib.sha256(tree[rel]).hexdigest().encode() + b"\n")
    return h.hexdigest()
