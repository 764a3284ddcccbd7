"""Verify a bundle's bytes before ORT sees any of them (docs/bundle-format.md 1 and 7).

Order: walk the directory without following links (links, hard links and special files
are refused), compare the closed list of files, compare every size, then stream sha256
of each file (skipped for files the cache saw unchanged), then check every ONNX
external-data reference against the variant's file list. A file-system failure is a
BundleError naming the file and the errno (raised from the OSError), never tampering.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeort._fs import os_error_text
from edgeort._log import get_logger
from edgeort.bundle._cache import FileCache
from edgeort.bundle._manifest import (
    COMPONENT,
    COMPONENT_JSON,
    MANIFEST_JSON,
    SIGNATURE_JSON,
    Bundle,
)
from edgeort.bundle._model import Variant
from edgeort.bundle._paths import path_problem
from edgeort.errors import BundleError, IntegrityError

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle._protobuf import ExternalRef

__all__ = ["check_external_refs", "hash_fd", "model_refs", "scan_tree", "verify_bundle"]

log = get_logger("edgeort.bundle")

CHUNK = 1 << 20
MAX_ENTRIES = 200_000
MAX_DEPTH = 64
UNLISTED_OK = frozenset({MANIFEST_JSON, COMPONENT_JSON, SIGNATURE_JSON})
_EXTERNAL_KEYS = frozenset({"location", "offset", "length", "checksum", "basepath"})
_DECIMAL = re.compile(r"\d{1,19}\Z")
_REPARSE_POINT = 0x400


def _link_like(st: os.stat_result) -> bool:
    return stat.S_ISLNK(st.st_mode) or bool(getattr(st, "st_file_attributes", 0) & _REPARSE_POINT)


def scan_tree(root: Path) -> tuple[dict[str, os.stat_result], set[str]]:
    """(files, directories) under ``root`` by posix relative path; links and special
    files raise IntegrityError naming them."""
    files: dict[str, os.stat_result] = {}
    dirs: set[str] = set()
    stack: list[tuple[Path, str, int]] = [(root, "", 0)]
    while stack:
        directory, prefix, depth = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                rel = prefix + entry.name
                st = entry.stat(follow_symlinks=False)
                if _link_like(st):
                    raise IntegrityError(
                        f"{rel}: symbolic link or reparse point in bundle {root}", path=entry.path
                    )
                if stat.S_ISDIR(st.st_mode):
                    if depth >= MAX_DEPTH:
                        raise IntegrityError(
                            f"{rel}: directories nested deeper than {MAX_DEPTH}", path=entry.path
                        )
                    dirs.add(rel)
                    stack.append((Path(entry.path), rel + "/", depth + 1))
                elif stat.S_ISREG(st.st_mode):
                    files[rel] = st
                else:
                    raise IntegrityError(
                        f"{rel}: not a regular file (FIFO, socket or device)", path=entry.path
                    )
                if len(files) + len(dirs) > MAX_ENTRIES:
                    raise IntegrityError(f"{root}: more than {MAX_ENTRIES} entries", path=root)
    return files, dirs


def _structure_problems(
    bundle: Bundle, files: dict[str, os.stat_result], dirs: set[str]
) -> list[str]:
    listed = bundle.listed_files()
    problems = [
        f"{rel}: not listed in the manifest"
        for rel in sorted(set(files) - set(listed) - UNLISTED_OK)
    ]
    problems += [f"{rel}: listed but missing" for rel in sorted(set(listed) - set(files))]
    problems += [
        f"{rel}: required file missing"
        for rel in (MANIFEST_JSON, COMPONENT_JSON)
        if rel not in files
    ]
    wanted = {COMPONENT} | {
        rel.rsplit("/", i)[0] for rel in listed for i in range(1, rel.count("/") + 1)
    }
    problems += [f"{rel}/: directory holds no listed file" for rel in sorted(dirs - wanted)]
    problems += [
        f"{rel}: has {st.st_nlink} hard links"
        for rel, st in sorted(files.items())
        if st.st_nlink > 1
    ]
    for rel, (variant, index) in sorted(listed.items()):
        entry = variant.files[index]
        if rel in files and files[rel].st_size != entry.size:
            problems.append(f"{rel}: size {files[rel].st_size} bytes, manifest says {entry.size}")
    return problems


def hash_fd(fd: int, name: str, limit: int) -> str:
    """Stream sha256 of an open file; more than ``limit`` bytes raises IntegrityError."""
    digest, total = hashlib.sha256(), 0
    while chunk := os.read(fd, CHUNK):
        total += len(chunk)
        if total > limit:
            raise IntegrityError(f"{name}: grew past {limit} bytes while being verified", path=name)
        digest.update(chunk)
    return digest.hexdigest()


def _open_checked(path: Path, rel: str, st: os.stat_result) -> int:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    now = os.fstat(fd)
    if (now.st_ino, now.st_dev, now.st_size) != (st.st_ino, st.st_dev, st.st_size):
        os.close(fd)
        raise IntegrityError(f"{rel}: replaced while being verified", path=path)
    return fd


def model_refs(path: Path) -> list[ExternalRef]:
    """External-data references of the model file at ``path`` (no hashing)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        return _model_refs(fd, path.name, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _model_refs(fd: int, rel: str, size: int) -> list[ExternalRef]:
    head = os.pread(fd, 8, 0) if hasattr(os, "pread") else b""
    if rel.endswith(".ort") or head[4:8] == b"ORTM":
        return []  # ORT format (flatbuffer): no external data
    from edgeort.bundle._protobuf import MalformedProto, external_refs  # a walk: not cached

    os.lseek(fd, 0, os.SEEK_SET)
    with os.fdopen(os.dup(fd), "rb") as fh:
        try:
            return external_refs(fh, size)
        except MalformedProto as exc:
            raise IntegrityError(f"{rel}: not a valid ONNX protobuf: {exc}", path=rel) from None


def _refs_to_json(refs: list[ExternalRef]) -> list[Any]:
    return [[r.tensor, [list(kv) for kv in r.entries], r.location_external] for r in refs]


def _refs_from_json(data: list[Any]) -> list[ExternalRef]:
    """Refs stored in the cache; anything not exactly as written raises ValueError."""
    if isinstance(data, list) and not data:
        return []  # the usual case (no external data): the protobuf reader is not needed
    from edgeort.bundle._protobuf import ExternalRef

    refs = [ExternalRef(t, tuple((k, v) for k, v in e), x) for t, e, x in data]
    for r in refs:
        texts = [r.tensor, *(s for kv in r.entries for s in kv)]
        if not isinstance(r.location_external, bool) or not all(isinstance(s, str) for s in texts):
            raise ValueError("malformed cached refs")
    return refs


def _verify_file(
    bundle: Bundle, rel: str, st: os.stat_result, v: Variant, index: int, cache: FileCache
) -> list[ExternalRef] | None:
    """Check one file's sha256; for a model file return its external-data references."""
    entry, path = v.files[index], bundle.root / rel
    is_model = entry.path == v.model_file
    real = os.path.realpath(path)
    hit = cache.get(real, st)
    hashed = hit is not None and hit.get("sha256") == entry.sha256
    if hashed and not is_model:
        return None
    if hashed and hit is not None:
        try:
            return _refs_from_json(hit["refs"])
        except (KeyError, TypeError, ValueError):
            pass  # no or unreadable refs: walk the model again
    try:
        fd = _open_checked(path, rel, st)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise IntegrityError(f"{rel}: became a symbolic link", path=path) from None
        raise
    try:
        if not hashed:
            got = hash_fd(fd, rel, entry.size)
            if got != entry.sha256:
                raise IntegrityError(
                    f"{rel}: sha256 {got} differs from the manifest's {entry.sha256}", path=path
                )
        refs = _model_refs(fd, rel, entry.size) if is_model else None
    finally:
        os.close(fd)
    extra = {"refs": _refs_to_json(refs)} if refs is not None else {}
    cache.put(real, st, sha256=entry.sha256, **extra)
    return refs


def _decimal(value: str | None, what: str, where: str) -> int | None:
    if value is None:
        return None
    if not _DECIMAL.match(value) or int(value) >= 2**63:
        raise IntegrityError(
            f"{where}: external data {what} {value!r} is not an integer >= 0", path=where
        )
    return int(value)


def check_external_refs(v: Variant, model_rel: str, refs: list[ExternalRef]) -> None:
    """Every external reference stays inside the variant and inside its file."""
    base = v.model_file.rpartition("/")[0]
    sizes = {e.path: e.size for e in v.files}
    for ref in refs:
        where = f"{model_rel} tensor {ref.tensor!r}"
        keys = [k for k, _ in ref.entries]
        entries = dict(ref.entries)
        if len(set(keys)) != len(keys) or not set(keys) <= _EXTERNAL_KEYS:
            raise IntegrityError(
                f"{where}: external_data keys {keys} repeat or are unknown", path=model_rel
            )
        location = entries.get("location")
        why = path_problem(location) if location is not None else "is missing"
        if why:
            raise IntegrityError(
                f"{where}: external data location {location!r} {why}", path=model_rel
            )
        target = f"{base}/{location}" if base else location
        if target not in sizes:
            raise IntegrityError(
                f"{where}: external data file {target!r} is not listed in the variant's files",
                path=model_rel,
            )
        offset = _decimal(entries.get("offset"), "offset", where) or 0
        length = _decimal(entries.get("length"), "length", where)
        size = sizes[target]
        if offset + (length or 0) > size:
            end = f"offset {offset} + length {length or 0}"
            raise IntegrityError(
                f"{where}: external data {end} is past the end of {target!r} ({size} bytes)",
                path=model_rel,
            )


def verify_bundle(bundle: Bundle, *, use_cache: bool = True) -> None:
    """Raise IntegrityError unless every byte under ``bundle.root`` is what the manifest
    lists; BundleError naming the file and the errno when the file system fails."""
    try:
        _verify(bundle, use_cache)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else bundle.root
        raise BundleError(
            f"bundle {bundle.root}: cannot read: {os_error_text(exc)}", path=where
        ) from exc


def _verify(bundle: Bundle, use_cache: bool) -> None:
    files, dirs = scan_tree(bundle.root)
    problems = _structure_problems(bundle, files, dirs)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        details = "\n".join(f"  - {p}" for p in problems[:20])
        first = problems[0].split(":", 1)[0]
        raise IntegrityError(
            f"bundle {bundle.root}: {problems[0]}{more}\n{details}", path=bundle.root / first
        )
    cache = FileCache.open() if use_cache else FileCache.disabled()
    try:
        for rel, (variant, index) in sorted(bundle.listed_files().items()):
            try:
                refs = _verify_file(bundle, rel, files[rel], variant, index, cache)
            except OSError as exc:  # os.read errors carry no file name: add it
                if exc.filename is None:
                    exc.filename = str(bundle.root / rel)
                raise
            if refs is not None:
                check_external_refs(variant, rel, refs)
    finally:
        cache.save()
    log.debug("verified %s (%d files)", bundle.root, len(files))
