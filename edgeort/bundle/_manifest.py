"""``Bundle``: the parsed manifest.json + model/component.json of one bundle directory.

``Bundle.from_json`` applies docs/bundle-format.md sections 3-4 (every problem with its
JSON path); ``read_bundle(root)`` reads both files (size-capped, regular files only),
checks the manifest's self-digest (``_seal.py``) and then its ``components_sha256``
against the component bytes. Nothing here touches the variant files; ``_verify.py``
does. A file-system failure is a BundleError naming the file and the errno.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edgeort._fs import os_error_text
from edgeort.bundle._fields import Fields
from edgeort.bundle._json import Problems, read_json_file
from edgeort.bundle._model import SHA256_RE, Variant
from edgeort.bundle._paths import twin_problems
from edgeort.bundle._seal import SELF_KEY, self_digest
from edgeort.errors import BundleError, IntegrityError, UsageError

__all__ = [
    "COMPONENT",
    "COMPONENT_JSON",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_JSON",
    "SIGNATURE_JSON",
    "Bundle",
    "read_bundle",
]

FORMAT = "edgeort.bundle"
FORMAT_VERSION = 1
COMPONENT = "model"
MANIFEST_JSON = "manifest.json"
COMPONENT_JSON = f"{COMPONENT}/component.json"
SIGNATURE_JSON = "signature.json"
MANIFEST_KEYS = (
    "schema_version",
    "package_name",
    "package_version",
    "description",
    "layout",
    "components",
    "shared_assets",
    "additional_metadata",
)
COMPONENT_KEYS = ("variants", "component_name", "additional_metadata")
MAX_VARIANTS = 256
_SCHEMA_RE = re.compile(r"(\d{1,6})\.(\d{1,6})\Z")


@dataclass(frozen=True, slots=True)
class Bundle:
    """An opened bundle. ``root`` is the directory ORT reads; ``source`` what was opened
    (the same directory, or the .zip it was extracted from)."""

    root: Path
    package_name: str
    package_version: str
    variants: tuple[Variant, ...]
    metadata: Mapping[str, Any]
    source: Path
    manifest_sha256: str = ""
    component_sha256: str = ""

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        have = ", ".join(v.name for v in self.variants)
        raise UsageError(
            f"bundle {self.source} has no variant {name!r} (it has: {have})", option="variant"
        )

    def variant_dir(self, v: Variant) -> Path:
        return self.root / COMPONENT / v.directory

    def model_path(self, v: Variant) -> Path:
        return self.variant_dir(v) / v.model_file

    def listed_files(self) -> dict[str, tuple[Variant, int]]:
        """Root-relative posix path -> (variant, index into its files)."""
        return {
            f"{COMPONENT}/{v.directory}/{e.path}": (v, i)
            for v in self.variants
            for i, e in enumerate(v.files)
        }

    @classmethod
    def from_json(
        cls,
        manifest: Any,
        component: Any,
        *,
        root: Path,
        source: Path | None = None,
        manifest_sha256: str = "",
        component_sha256: str = "",
        manifest_bytes: bytes | None = None,
    ) -> Bundle:
        """Parse both documents. With ``manifest_bytes`` (the file as read) the manifest's
        self-digest is checked, with ``component_sha256`` its chain to the component."""
        root = Path(root)
        problems = Problems(MANIFEST_JSON, root / MANIFEST_JSON)
        head = _parse_manifest(manifest, problems)
        problems.raise_if_any()
        assert head is not None
        name, version, edgeort, strict = head
        if manifest_bytes is not None:
            self_digest(manifest_bytes, edgeort[SELF_KEY], path=root / MANIFEST_JSON)
        expected = edgeort["components_sha256"][COMPONENT]
        if component_sha256 and component_sha256 != expected:
            raise IntegrityError(
                f"{COMPONENT_JSON}: sha256 {component_sha256} differs from manifest.json "
                f"additional_metadata.edgeort.components_sha256.model {expected}",
                path=root / COMPONENT_JSON,
            )
        problems = Problems(COMPONENT_JSON, root / COMPONENT_JSON)
        variants = _parse_component(component, problems, strict=strict)
        problems.raise_if_any()
        return cls(
            root=root,
            package_name=name,
            package_version=version,
            variants=variants,
            metadata=MappingProxyType(dict(edgeort)),
            source=Path(source) if source is not None else root,
            manifest_sha256=manifest_sha256,
            component_sha256=component_sha256,
        )


def _schema_minor(f: Fields) -> int | None:
    value = f.raw("schema_version")
    m = _SCHEMA_RE.match(value) if isinstance(value, str) else None
    if m is None:
        f.problems.expect(f.at("schema_version"), value, "a string like '1.0'")
        return None
    if int(m.group(1)) != 1:
        f.problems.add(
            f.at("schema_version"),
            f"major version {m.group(1)} is not supported (this edgeort reads 1)",
        )
        return None
    return int(m.group(2))


def _parse_edgeort(f: Fields) -> dict[str, Any] | None:
    meta = f.obj("additional_metadata")
    ed = meta.obj("edgeort") if meta is not None else None
    if ed is None:
        return None
    before = len(ed.problems.items)
    if ed.data.get("format") != FORMAT:
        ed.problems.expect(ed.at("format"), ed.data.get("format"), repr(FORMAT))
    version = ed.integer("format_version", minimum=1)
    if version is not None and version > FORMAT_VERSION:
        ed.problems.add(
            ed.at("format_version"),
            f"{version} was written by a newer edgeort (this one reads {FORMAT_VERSION})",
        )
    producer = ed.obj("producer")
    if producer is not None:
        producer.text("name", max_len=256)
        producer.text("version", max_len=256)
    _self_sha256(ed)
    digests = ed.obj("components_sha256")
    if digests is not None:
        digests.only((COMPONENT,))
        digest = digests.text(COMPONENT, max_len=64)
        if digest is not None and not SHA256_RE.match(digest):
            ed.problems.add(digests.at(COMPONENT), "expected 64 lowercase hex digits")
    source = ed.obj("source_model", required=False)
    if source is not None:
        source.text("name", max_len=4096)
        source.integer("size")
        digest = source.text("sha256", max_len=64)
        if digest is not None and not SHA256_RE.match(digest):
            ed.problems.add(source.at("sha256"), "expected 64 lowercase hex digits")
    return None if len(ed.problems.items) > before else ed.data


def _self_sha256(ed: Fields) -> None:
    if SELF_KEY not in ed.data:
        ed.problems.add(
            ed.at(SELF_KEY),
            "missing: this edgeort requires the manifest's self-digest (bundles written "
            "before it was introduced must be packaged again)",
        )
        return
    digest = ed.text(SELF_KEY, max_len=64)
    if digest is not None and not SHA256_RE.match(digest):
        ed.problems.add(ed.at(SELF_KEY), "expected 64 lowercase hex digits")


def _parse_manifest(data: Any, problems: Problems) -> tuple[str, str, dict[str, Any], bool] | None:
    f = Fields.of(data, "$", problems)
    if f is None:
        return None
    minor = _schema_minor(f)
    if minor is None:
        return None  # an unknown schema: nothing else can be judged
    if minor == 0:
        f.only(MANIFEST_KEYS)
    if f.data.get("layout", "portable") != "portable":
        f.problems.expect(f.at("layout"), f.data["layout"], "'portable'")
    if f.data.get("components") != {COMPONENT: COMPONENT}:
        f.problems.expect(f.at("components"), f.data.get("components"), '{"model": "model"}')
    if f.data.get("shared_assets", {}) != {}:
        f.problems.add(
            f.at("shared_assets"), "edgeort bundles use no shared assets; expected {} or no key"
        )
    name, version = f.text("package_name", max_len=128), f.text("package_version", max_len=64)
    if "description" in f.data:
        f.text("description", empty=True, max_len=65536)
    edgeort = _parse_edgeort(f)
    if problems or name is None or version is None or edgeort is None:
        return None
    return name, version, edgeort, minor == 0


def _parse_component(data: Any, problems: Problems, *, strict: bool) -> tuple[Variant, ...]:
    f = Fields.of(data, "$", problems)
    if f is None:
        return ()
    if strict:
        f.only(COMPONENT_KEYS)
    if "component_name" in f.data:
        f.text("component_name", empty=True, max_len=256)
    sub = f.obj("variants")
    if sub is None:
        return ()
    if not 1 <= len(sub.data) <= MAX_VARIANTS:
        problems.add(
            f.at("variants"), f"expected 1 to {MAX_VARIANTS} variants, got {len(sub.data)}"
        )
        return ()
    parsed = [
        Variant.parse(name, body, sub.at(name), problems, strict=strict)
        for name, body in sub.data.items()
    ]
    variants = tuple(v for v in parsed if v is not None)
    folded: dict[str, str] = {}
    for v in variants:
        other = folded.setdefault(v.directory.casefold(), v.name)
        if other != v.name:
            problems.unsafe(
                sub.at(v.name), f"variant_directory {v.directory!r} collides with variant {other!r}"
            )
    paths = [f"{COMPONENT}/{v.directory}/{e.path}" for v in variants for e in v.files]
    for problem in twin_problems(paths):
        problems.unsafe(f.at("variants"), problem)
    return variants


def read_bundle(root: Path, *, source: Path | None = None) -> Bundle:
    """Parse the two JSON files of the bundle directory ``root`` (no file verification).
    ``Bundle.root`` is the real path (a symlinked root such as ``current/`` is followed
    once; links inside the bundle are refused by verification). Wrong bytes (the
    manifest's self-digest, the component chain, a link) raise IntegrityError; malformed
    JSON, and a file-system failure (raised from the OSError), BundleError."""
    given = Path(root)
    try:
        root = Path(os.path.realpath(given))
        if not root.is_dir():
            raise BundleError(f"{given}: not a bundle directory", path=given)
        manifest, mbytes = read_json_file(root / MANIFEST_JSON, name=MANIFEST_JSON)
        if (root / COMPONENT).is_symlink():
            raise IntegrityError(
                f"{COMPONENT}/: is a symbolic link in {root}", path=root / COMPONENT
            )
        component, cbytes = read_json_file(root / COMPONENT_JSON, name=COMPONENT_JSON)
    except OSError as exc:  # stat of the root or of model/ failed
        raise BundleError(
            f"cannot read bundle {given}: {os_error_text(exc)}", path=exc.filename or given
        ) from exc
    return Bundle.from_json(
        manifest,
        component,
        root=root,
        source=source if source is not None else given,
        manifest_sha256=hashlib.sha256(mbytes).hexdigest(),
        component_sha256=hashlib.sha256(cbytes).hexdigest(),
        manifest_bytes=mbytes,
    )
