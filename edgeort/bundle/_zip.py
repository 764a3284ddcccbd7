"""Zip transport: deterministic writing and refuse-don't-sanitise extraction.

``write_zip`` stores a bundle directory as a zip whose bytes depend only on the files
(sorted members, fixed timestamps and modes). ``extract_zip`` unpacks into
``<cache>/bundles/<sha256 of zip>/`` after checking every member against
docs/bundle-format.md section 9: names, types, overlaps, ratios, counts, and the
bundle's own file list; files are hashed while they are written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from edgeort._dirs import cache_dir
from edgeort._fs import fsync_tree, staging_dir
from edgeort.bundle._cache import FileCache, private_dir
from edgeort.bundle._manifest import (
    COMPONENT_JSON,
    MANIFEST_JSON,
    SIGNATURE_JSON,
    Bundle,
    read_bundle,
)
from edgeort.bundle._paths import path_problem, twin_problems
from edgeort.bundle._place import clean_leftovers, locked, place_dir
from edgeort.bundle._verify import CHUNK, hash_fd, scan_tree
from edgeort.errors import BundleError, CacheError, IntegrityError

__all__ = ["MAX_MEMBERS", "MAX_RATIO", "MAX_TOTAL", "extract_zip", "is_zip", "write_zip"]

log = logging.getLogger("edgeort.bundle")

MAX_MEMBERS = 100_000
MAX_TOTAL = 16 * 1024**3
MAX_RATIO = 250
RATIO_MIN_SIZE = 1024 * 1024
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    ValueError,
    NotImplementedError,
    struct.error,
    OverflowError,
    KeyError,
)


def is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _write_members(
    root: Path, dest: BinaryIO, names: list[str], stored: set[str], extra: Mapping[str, bytes]
) -> list[str]:
    """Write the zip; return members whose ratio exceeds MAX_RATIO (to be STORED)."""
    too_high = []
    with zipfile.ZipFile(dest, "w") as zf:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            data = extra.get(name)
            info.file_size = len(data) if data is not None else os.path.getsize(root / name)
            with zf.open(info, "w", force_zip64=info.file_size >= zipfile.ZIP64_LIMIT) as out:
                if data is not None:
                    out.write(data)
                else:
                    with open(root / name, "rb") as src:
                        shutil.copyfileobj(src, out, CHUNK)
            if info.file_size >= RATIO_MIN_SIZE and info.file_size > MAX_RATIO * max(
                info.compress_size, 1
            ):
                too_high.append(name)
    return too_high


def write_zip(root: Path, dest: Path, *, extra: Mapping[str, bytes] | None = None) -> None:
    """Zip the bundle directory ``root`` (plus ``extra`` members) into the new file ``dest``."""
    extra = dict(extra or {})
    files, _dirs = scan_tree(root)
    names = sorted(set(files) | set(extra))
    stored: set[str] = set()
    for _attempt in range(2):
        with open(dest, "wb") as fh:
            stored |= set(_write_members(root, fh, names, stored, extra))
            fh.flush()
            os.fsync(fh.fileno())
        if not stored or _attempt:
            return


def _zip_digest(path: Path, cache: FileCache) -> str:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{path}: not a regular file", path=path)
        real = os.path.realpath(path)
        hit = cache.get(real, st)
        if hit is not None and isinstance(hit.get("sha256"), str):
            return str(hit["sha256"])
        digest = hash_fd(fd, str(path), st.st_size)
    finally:
        os.close(fd)
    cache.put(real, st, sha256=digest)
    return digest


def _strip_prefix(names: list[str]) -> str:
    if MANIFEST_JSON in names:
        return ""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        return tops.pop() + "/"
    return ""


def _local_spans(zip_path: Path, infos: list[zipfile.ZipInfo], start_dir: int) -> None:
    """Refuse members whose local entries share bytes (overlap bombs)."""
    spans = []
    with open(zip_path, "rb") as fh:
        for info in infos:
            if not 0 <= info.header_offset < start_dir:
                raise BundleError(
                    f"{zip_path}: member {info.filename!r} has an offset outside the archive",
                    path=zip_path,
                )
            fh.seek(info.header_offset)
            header = fh.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                raise BundleError(
                    f"{zip_path}: member {info.filename!r} has no local header", path=zip_path
                )
            n, m = struct.unpack("<HH", header[26:30])
            spans.append(
                (
                    info.header_offset,
                    info.header_offset + 30 + n + m + info.compress_size,
                    info.filename,
                )
            )
    spans.sort()
    for (_, end, name), (nxt, _, other) in zip(
        spans, [*spans[1:], (start_dir, 0, "central directory")], strict=True
    ):
        if end > nxt:
            raise BundleError(
                f"{zip_path}: member {name!r} overlaps {other!r} (zip bomb?)", path=zip_path
            )


def _check_info(zip_path: Path, info: zipfile.ZipInfo, name: str) -> str | None:
    mode = info.external_attr >> 16
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"uses compression method {info.compress_type} (only STORED and DEFLATE)"
    if mode and stat.S_ISLNK(mode):
        return "is a symbolic link"
    # No file-type bits (zipfile.writestr writes only permissions, 0o600): a regular
    # file, or a directory when the name ends in "/" -- as zipfile itself reads it.
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is not a regular file or directory"
    if info.file_size >= RATIO_MIN_SIZE and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        ratio = f"{info.file_size} bytes from {info.compress_size}"
        return f"expands {ratio}, a ratio over {MAX_RATIO} (zip bomb?)"
    why = path_problem(name.rstrip("/"))
    return f"has an unsafe name: {why}" if why else None


def _members(zip_path: Path, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError(
            f"{zip_path}: {len(infos)} members, more than {MAX_MEMBERS}", path=zip_path
        )
    prefix = _strip_prefix([i.filename for i in infos])
    files: dict[str, zipfile.ZipInfo] = {}
    dirs: set[str] = set()
    for info in infos:
        name = info.filename[len(prefix) :] if info.filename.startswith(prefix) else info.filename
        if name == "":
            continue  # the stripped top-level directory entry itself
        why = _check_info(zip_path, info, name)
        if why:
            raise BundleError(f"{zip_path}: member {info.filename!r} {why}", path=zip_path)
        if name.endswith("/") or stat.S_ISDIR(info.external_attr >> 16):
            dirs.add(name.rstrip("/"))
        elif name in files:
            raise BundleError(f"{zip_path}: member {info.filename!r} appears twice", path=zip_path)
        else:
            files[name] = info
    problems = twin_problems(files) + [
        f"{d!r} is both a file and a directory" for d in sorted(dirs & set(files))
    ]
    if problems:
        raise BundleError(f"{zip_path}: {problems[0]}", path=zip_path)
    _local_spans(zip_path, infos, zf.start_dir)
    return files


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, limit: int) -> str:
    """Stream one member to a new file, hashing; refuse more bytes than ``limit``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_BINARY", 0)
    )
    digest, total = hashlib.sha256(), 0
    with zf.open(info) as src, os.fdopen(os.open(dest, flags, 0o644), "wb") as out:
        while chunk := src.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise BundleError(
                    f"member {info.filename!r} yields more than {limit} bytes", path=dest
                )
            digest.update(chunk)
            out.write(chunk)
    if total != info.file_size:
        raise BundleError(
            f"member {info.filename!r} yields {total} bytes, declares {info.file_size}", path=dest
        )
    return digest.hexdigest()


def _unpack(zip_path: Path, zf: zipfile.ZipFile, staged: Path) -> dict[str, str]:
    """Extract into ``staged``; return the sha256 of every listed file."""
    members = _members(zip_path, zf)
    for name in (MANIFEST_JSON, COMPONENT_JSON):
        if name not in members:
            raise BundleError(f"{zip_path}: no {name} member; not an edgeort bundle", path=zip_path)
        _extract_one(zf, members[name], staged / name, 16 * 1024 * 1024)
    bundle = read_bundle(staged, source=zip_path)
    listed = {rel: v.files[i] for rel, (v, i) in bundle.listed_files().items()}
    unlisted = sorted(set(members) - set(listed) - {MANIFEST_JSON, COMPONENT_JSON, SIGNATURE_JSON})
    missing = sorted(set(listed) - set(members))
    if unlisted or missing:
        what = (
            f"member {unlisted[0]!r} is not listed"
            if unlisted
            else f"listed file {missing[0]!r} is missing"
        )
        raise IntegrityError(f"{zip_path}: {what}", path=zip_path)
    _check_space(zip_path, bundle, members)
    for rel, entry in sorted(listed.items()):
        info = members[rel]
        if info.file_size != entry.size:
            raise IntegrityError(
                f"{zip_path}: {rel} is {info.file_size} bytes, manifest says {entry.size}",
                path=zip_path,
            )
        if _extract_one(zf, info, staged / rel, entry.size) != entry.sha256:
            raise IntegrityError(
                f"{zip_path}: {rel} sha256 differs from the manifest", path=zip_path
            )
    if SIGNATURE_JSON in members:
        _extract_one(zf, members[SIGNATURE_JSON], staged / SIGNATURE_JSON, 64 * 1024)
    return {rel: entry.sha256 for rel, entry in listed.items()}


def _remember(target: Path, digests: Mapping[str, str], cache: FileCache) -> None:
    """Seed the verified-files cache with the digests computed while extracting."""
    for rel, digest in digests.items():
        path = target / rel
        cache.put(os.path.realpath(path), os.lstat(path), sha256=digest)
    cache.save()


def _check_space(zip_path: Path, bundle: Bundle, members: Mapping[str, zipfile.ZipInfo]) -> None:
    total = sum(info.file_size for info in members.values())
    if total > MAX_TOTAL:
        raise BundleError(
            f"{zip_path}: {total} bytes uncompressed, more than {MAX_TOTAL}", path=zip_path
        )
    free = shutil.disk_usage(bundle.root).free
    if total + 64 * 1024 * 1024 > free:
        raise CacheError(
            f"{zip_path}: needs {total} bytes, cache {bundle.root.parent} has {free} free",
            path=bundle.root,
        )


def extract_zip(zip_path: Path, *, cache: FileCache | None = None, force: bool = False) -> Path:
    """Extract (or find already extracted) ``zip_path``; return the bundle directory."""
    cache = cache or FileCache.open()
    bundles = cache_dir() / "bundles"
    digest = _zip_digest(zip_path, cache)
    cache.save()
    target = bundles / digest
    if target.is_dir() and not target.is_symlink() and not force:
        return target
    why = private_dir(bundles)
    if why:
        raise CacheError(
            f"cannot extract {zip_path}: cache directory {bundles}: {why}", path=bundles
        )
    clean_leftovers(bundles)
    try:
        with staging_dir(target) as staged, locked(staged), zipfile.ZipFile(zip_path) as zf:
            digests = _unpack(zip_path, zf, staged)
            fsync_tree(staged)
            place_dir(staged, target)  # atomic, also over a concurrent or stale extraction
    except _ZIP_ERRORS as exc:
        cause = exc.__context__
        if isinstance(cause, OSError):  # zipfile reports a failed read as BadZipFile
            raise OSError(cause.errno, cause.strerror, os.fspath(zip_path)) from cause
        raise BundleError(f"{zip_path}: not a readable zip: {exc}", path=zip_path) from None
    except PermissionError as exc:
        raise CacheError(f"cannot extract {zip_path} into {bundles}: {exc}", path=bundles) from None
    _remember(target, digests, cache)
    log.info("extracted %s into %s", zip_path, target)
    return target
