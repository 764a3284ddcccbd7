"""Which ONNX ops each execution provider takes: tables from ORT's own docs and sources.

One JSON file per EP sits beside this module. Each names its source (file, repository,
commit or wheel) and the ORT version it was read from, so a report can cite it:

===========  ==========================================================================
``nnapi``    ``nnapi_supported_ops.md`` shipped in the onnxruntime 1.32.0 wheel
``coreml``   ``coreml_supported_mlprogram_ops.md`` shipped in the onnxruntime 1.32.0 wheel
``qnn``      ``op_builder_factory.cc`` of onnxruntime/onnxruntime-qnn (plugin 2.x)
``openvino`` ``ov_versions/data_ops.cc`` of intel/onnxruntime (the CPU entries)
``directml`` ``docs/OperatorKernels.md`` (DmlExecutionProvider) of microsoft/onnxruntime
===========  ==========================================================================

Entries are ``"domain:op_type"``. Some carry cheap, machine-checked ``rules`` taken from
the table's caveat column (input rank, constant inputs, allowed attribute values); the
remaining caveats are reported as text, as ORT's usability checker does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from edgeort.errors import EdgeortError

__all__ = ["TABLES", "AttrRule", "OpEntry", "OpTable", "load_table", "load_tables", "table_for_ep"]

TABLES = ("nnapi", "coreml", "qnn", "openvino", "directml")


@dataclass(frozen=True, slots=True)
class AttrRule:
    allowed: tuple[Any, ...]
    default: Any = None


@dataclass(frozen=True, slots=True)
class OpEntry:
    domain: str
    op_type: str
    caveat: str = ""
    input_rank: tuple[int, ...] = ()  # allowed ranks of input 0 (when known)
    const_inputs: tuple[int, ...] = ()  # inputs that must be initializers/constants
    attrs: Mapping[str, AttrRule] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.domain}:{self.op_type}"


@dataclass(frozen=True, slots=True)
class OpTable:
    short: str
    ep: str
    title: str
    source: Mapping[str, str]
    match_domain: bool
    require_fixed_shapes: bool
    max_rank: int | None
    notes: tuple[str, ...]
    ops: Mapping[str, OpEntry]

    def lookup(self, domain: str, op_type: str) -> OpEntry | None:
        """The entry for a node's op, or None. ``domain`` "" means ai.onnx."""
        dom = domain or "ai.onnx"
        if self.match_domain:
            return self.ops.get(f"{dom}:{op_type}")
        exact = self.ops.get(f"{dom}:{op_type}")
        if exact is not None:
            return exact
        return next((e for e in self.ops.values() if e.op_type == op_type), None)

    def cite(self) -> str:
        src = dict(self.source)
        where = src.get("file", "")
        if "repo" in src:
            where = f"{src['repo']}@{src.get('commit', '')[:12]}: {where}"
        return f"{where} (ORT {src.get('ort_version', '?')})"


def _entry(key: str, raw: Mapping[str, Any]) -> OpEntry:
    domain, _, op_type = key.partition(":")
    rules = raw.get("rules", {})
    attrs = {
        name: AttrRule(tuple(rule["allowed"]), rule.get("default"))
        for name, rule in rules.get("attrs", {}).items()
    }
    return OpEntry(
        domain=domain,
        op_type=op_type,
        caveat=raw.get("caveat", ""),
        input_rank=tuple(rules.get("input_rank", ())),
        const_inputs=tuple(rules.get("const_inputs", ())),
        attrs=attrs,
    )


@cache
def load_table(short: str) -> OpTable:
    """The op table for one EP short name (``nnapi``, ``coreml``, ``qnn``, ...)."""
    if short not in TABLES:
        raise EdgeortError(f"no op table for {short!r}; tables exist for {', '.join(TABLES)}")
    text = resources.files(__name__).joinpath(f"{short}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return OpTable(
        short=data["short"],
        ep=data["ep"],
        title=data["title"],
        source=dict(data["source"]),
        match_domain=bool(data["match_domain"]),
        require_fixed_shapes=bool(data["require_fixed_shapes"]),
        max_rank=data.get("max_rank"),
        notes=tuple(data.get("notes", ())),
        ops={key: _entry(key, raw) for key, raw in data["ops"].items()},
    )


def load_tables() -> dict[str, OpTable]:
    return {short: load_table(short) for short in TABLES}


def table_for_ep(ep_name: str) -> OpTable | None:
    """The table whose EP is ``ep_name`` (e.g. ``QNNExecutionProvider``), or None."""
    return next((t for t in load_tables().values() if t.ep == ep_name), None)
