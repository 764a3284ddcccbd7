"""The bundle's data model: FileEntry, TensorSpec, Variant (one per target device).

:class:`TensorSpec` is edgeort's one tensor signature: the packager reads it off the
source model, the bundle records it, ``Model.inputs`` returns it.

Constructors are dumb; ``parse`` classmethods validate (docs/bundle-format.md,
sections 4-6) and record the JSON path of every problem in a shared ``Problems``.
``Bundle`` lives in ``_manifest.py`` with the manifest rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from edgeort.bundle._fields import Fields, is_int
from edgeort.bundle._json import Problems, child
from edgeort.bundle._paths import NAME_RE, option_value_problem, twin_problems

__all__ = ["FileEntry", "TensorSpec", "Variant"]

SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")
DTYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
VERSION_RE = re.compile(r"\d{1,6}(\.\d{1,6}){0,3}\Z")
DEVICES = ("cpu", "gpu", "npu")
VARIANT_KEYS = (
    "variant_directory",
    "ep",
    "device",
    "compatibility_string",
    "executor_info",
    "additional_metadata",
)
ORT_KEYS = ("model_file", "provider_options", "session_options")
MAX_RANK = 64


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a variant: posix path relative to the variant directory."""

    path: str
    size: int
    sha256: str

    @classmethod
    def parse(cls, data: Any, where: str, problems: Problems) -> FileEntry | None:
        f = Fields.of(data, where, problems)
        if f is None:
            return None
        before = len(problems.items)
        f.only(("path", "size", "sha256"))
        path, size, digest = f.safe_path("path"), f.integer("size"), f.text("sha256", max_len=64)
        if digest is not None and not SHA256_RE.match(digest):
            problems.add(f.at("sha256"), "expected 64 lowercase hex digits")
        if len(problems.items) > before or path is None or size is None or digest is None:
            return None
        return cls(path, size, digest)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """An input or output: numpy dtype name; shape of int (fixed), str (named) or None."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]

    @property
    def dynamic_dims(self) -> tuple[int, ...]:
        """The axes whose size is not fixed (named or unnamed)."""
        return tuple(i for i, d in enumerate(self.shape) if not isinstance(d, int))

    @classmethod
    def parse(cls, data: Any, where: str, problems: Problems) -> TensorSpec | None:
        f = Fields.of(data, where, problems)
        if f is None:
            return None
        before = len(problems.items)
        f.only(("name", "dtype", "shape"))
        tname, dtype, dims = (
            f.text("name", max_len=1024),
            f.text("dtype", max_len=32),
            f.items("shape", max_items=MAX_RANK),
        )
        if dtype is not None and not DTYPE_RE.match(dtype):
            problems.add(
                f.at("dtype"), f"expected a numpy dtype name like 'float32', got {dtype!r}"
            )
        for i, dim in enumerate(dims or ()):
            ok = (
                dim is None
                or (is_int(dim) and 0 <= dim < 2**63)
                or (isinstance(dim, str) and 0 < len(dim) <= 256)
            )
            if not ok:
                problems.expect(
                    child(f.at("shape"), i), dim, "an integer >= 0, a non-empty string or null"
                )
        if len(problems.items) > before or tname is None or dtype is None or dims is None:
            return None
        return cls(tname, dtype, tuple(dims))

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "name": self.name, "shape": list(self.shape)}


def _tensor_list(ed: Fields, key: str) -> tuple[TensorSpec, ...] | None:
    values = ed.items(key, max_items=4096)
    if values is None:
        return None
    specs = [TensorSpec.parse(v, child(ed.at(key), i), ed.problems) for i, v in enumerate(values)]
    names = [s.name for s in specs if s is not None]
    if len(set(names)) != len(names):
        ed.problems.add(ed.at(key), "tensor names are not distinct")
    return None if None in specs else tuple(s for s in specs if s is not None)


def _files(ed: Fields) -> tuple[FileEntry, ...] | None:
    values = ed.items("files")
    if values is None:
        return None
    if not values:
        ed.problems.add(ed.at("files"), "expected at least one file")
    entries = [
        FileEntry.parse(v, child(ed.at("files"), i), ed.problems) for i, v in enumerate(values)
    ]
    good = [e for e in entries if e is not None]
    for problem in twin_problems(e.path for e in good):
        ed.problems.unsafe(ed.at("files"), problem)
    return None if None in entries else tuple(good)


def _check_reports(ed: Fields) -> None:
    """SHOULD fields the packager writes: only their shape is checked."""
    for key in ("recipe", "latency"):
        ed.obj(key, required=False, nullable=True)
    acc = ed.obj("accuracy", required=False, nullable=True)
    if acc is not None and not isinstance(acc.data.get("passed", False), bool):
        acc.problems.expect(acc.at("passed"), acc.data["passed"], "a boolean")
    if acc is not None and acc.data.get("data", "validation") not in ("validation", "synthetic"):
        acc.problems.expect(acc.at("data"), acc.data["data"], "'validation' or 'synthetic'")
    for i, gate in enumerate(ed.items("gates", required=False, max_items=1024) or ()):
        g = Fields.of(gate, child(ed.at("gates"), i), ed.problems)
        if g is not None:
            for key in ("gate", "decision", "reason"):
                g.text(key, empty=True, max_len=65536)


def _opsets(ed: Fields) -> dict[str, int] | None:
    sub = ed.obj("opsets")
    if sub is None:
        return None
    for domain, version in sub.data.items():
        if not (is_int(version) and 1 <= version <= 10_000) or len(domain) > 256:
            sub.problems.expect(sub.at(domain), version, "an opset version in [1, 10000]")
    return dict(sub.data)


@dataclass(frozen=True, slots=True)
class Variant:
    """One variant: what ORT needs (ep, device, options) and what edgeort recorded."""

    name: str
    ep: str
    device: str
    directory: str
    model_file: str
    provider_options: Mapping[str, str]
    session_options: Mapping[str, str]
    files: tuple[FileEntry, ...]
    profile: str
    profile_version: str
    precision: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    ir_version: int
    opsets: Mapping[str, int]
    min_ort: str
    ep_package: str
    metadata: Mapping[str, Any]

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    @classmethod
    def parse(
        cls, name: str, data: Any, where: str, problems: Problems, *, strict: bool = True
    ) -> Variant | None:
        before = len(problems.items)
        if not NAME_RE.match(name):
            problems.add(where, f"variant name {name!r} must match {NAME_RE.pattern[:-2]}")
        f = Fields.of(data, where, problems)
        if f is None:
            return None
        if strict:
            f.only(VARIANT_KEYS)
        directory, ep = f.text("variant_directory", max_len=64), f.text("ep", max_len=128)
        if directory is not None and not NAME_RE.match(directory):
            problems.unsafe(
                f.at("variant_directory"), f"{directory!r} must be one name-like component"
            )
        device = f.data.get("device", "")
        if "device" in f.data and device not in DEVICES:
            problems.expect(f.at("device"), device, "one of 'cpu', 'gpu', 'npu' (or no key)")
        if "compatibility_string" in f.data:
            f.text("compatibility_string", empty=True, max_len=65536)
        ort, ed = _ort(f), _edgeort(f)
        if len(problems.items) > before or None in (ort, ed, directory, ep):
            return None
        assert ort is not None and ed is not None and ep is not None and directory is not None
        model_file, provider_options, session_options = ort
        if model_file not in {e.path for e in ed["files"]}:
            problems.add(
                _model_file_at(f),
                f"{model_file!r} is not listed in additional_metadata.edgeort.files",
            )
            return None
        return cls(
            name=name,
            ep=ep,
            device=device,
            directory=directory,
            model_file=model_file,
            provider_options=MappingProxyType(provider_options),
            session_options=MappingProxyType(session_options),
            **ed,
        )


def _model_file_at(f: Fields) -> str:
    return child(child(f.at("executor_info"), "ort"), "model_file")


def _ort(f: Fields) -> tuple[str, dict[str, str], dict[str, str]] | None:
    info = f.obj("executor_info")
    ort = info.obj("ort") if info is not None else None
    if ort is None:
        return None
    before = len(f.problems.items)
    ort.only(ORT_KEYS)
    model_file = ort.safe_path("model_file")
    options = {key: ort.str_map(key) for key in ("provider_options", "session_options")}
    for key, values in options.items():
        for name, value in values.items():
            why = option_value_problem(name, value)
            if why:
                f.problems.unsafe(child(ort.at(key), name), f"path-like option {value!r} {why}")
    if len(f.problems.items) > before or model_file is None:
        return None
    return model_file, options["provider_options"], options["session_options"]


def _edgeort(f: Fields) -> dict[str, Any] | None:
    meta = f.obj("additional_metadata")
    ed = meta.obj("edgeort") if meta is not None else None
    if ed is None:
        return None
    before = len(ed.problems.items)
    fields: dict[str, Any] = {
        "profile": ed.text("profile", max_len=256),
        "profile_version": ed.text("profile_version", max_len=64, empty=True),
        "precision": ed.text("precision", max_len=64),
        "inputs": _tensor_list(ed, "inputs"),
        "outputs": _tensor_list(ed, "outputs"),
        "ir_version": ed.integer("ir_version", minimum=1, maximum=1000),
        "opsets": _opsets(ed),
        "min_ort": ed.text("min_ort", max_len=32),
        "ep_package": ed.text("ep_package", max_len=256),
        "files": _files(ed),
    }
    if fields["min_ort"] is not None and not VERSION_RE.match(fields["min_ort"]):
        ed.problems.add(
            ed.at("min_ort"), f"expected a version like '1.20', got {fields['min_ort']!r}"
        )
    _check_reports(ed)
    if len(ed.problems.items) > before or None in fields.values():
        return None
    fields["opsets"] = MappingProxyType(fields["opsets"])
    fields["metadata"] = MappingProxyType(dict(ed.data))
    return fields
