"""The profile schema: one raw TOML table -> a :class:`~edgeort.profiles.Profile`.

Every check appends a :class:`~edgeort.errors.Problem` instead of raising, so one pass
reports every problem of a file. Key paths read like ``model.recipes.cnn[0].per_channel``.
The tables below are the schema; ``docs/profiles.md`` documents them field by field and
``tests/test_profiles.py`` proves they name exactly the dataclass fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from edgeort.errors import Problem
from edgeort.hardware.device import CPU_EP
from edgeort.profiles import (
    FAMILIES,
    PRECISIONS,
    SHORT_NAMES,
    Match,
    ModelPrep,
    Recipe,
    Runtime,
    SessionSettings,
    Verify,
)
from edgeort.profiles.checks import (
    BAD,
    Checker,
    Collector,
    block_size,
    boolean,
    describe,
    enum,
    fraction,
    integer,
    section,
    str_list,
    str_map,
    string,
    suggest,
    threads,
)

__all__ = ["RECIPE", "SECTIONS", "recipe_rules", "suggest", "validate"]


def ep_name(c: Collector, key: str, v: Any) -> Any:
    v = string(
        r"[A-Za-z][A-Za-z0-9]*ExecutionProvider", "an ORT EP name ends in 'ExecutionProvider'"
    )(c, key, v)
    if v is BAD or v in KNOWN_EPS:
        return v
    stem = v.removesuffix("ExecutionProvider").lower()
    stems = {e.removesuffix("ExecutionProvider").lower(): e for e in KNOWN_EPS}
    import difflib  # only for a name that is not a known EP

    close = difflib.get_close_matches(stem, list(stems), n=1, cutoff=0.75)
    if close:  # a typo of a known EP; an unknown plugin EP name is accepted
        return c.bad(key, f"unknown execution provider {v!r}; did you mean {stems[close[0]]!r}?")
    return v


def provider_option(c: Collector, key: str, v: str) -> Any:
    for name in re.findall(r"\{([A-Za-z_]+)\}", v):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return c.bad(key, f"unknown placeholder {{{name}}}; known: {known}")
    return v


def config_entry(c: Collector, key: str, v: str) -> Any:
    name = key.split(".", 2)[-1].strip('"')
    if name in BOOLEAN_CONFIG_KEYS and v not in ("0", "1"):
        return c.bad(key, f'expected "0" or "1", got {v!r}')
    return v


# ---- the schema ------------------------------------------------------------------------

KNOWN_EPS = (
    CPU_EP,
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "DnnlExecutionProvider",
    "MIGraphXExecutionProvider",
    "NnapiExecutionProvider",
    "NvTensorRTRTXExecutionProvider",
    "OpenVINOExecutionProvider",
    "QNNExecutionProvider",
    "TensorrtExecutionProvider",
    "VitisAIExecutionProvider",
    "WebGpuExecutionProvider",
    "XnnpackExecutionProvider",
)
PLACEHOLDERS = ("cache_dir",)
BOOLEAN_CONFIG_KEYS = frozenset(
    {
        "session.intra_op.allow_spinning",
        "session.inter_op.allow_spinning",
        "session.qdqisint8allowed",
        "session.disable_cpu_ep_fallback",
        "session.set_denormal_as_zero",
        "session.record_ep_graph_assignment_info",
        "session.enable_saved_runtime_optimizations",
        "ep.context_enable",
    }
)

_NAME = string(r"[a-z0-9][a-z0-9._-]{0,63}", "use 1-64 of a-z 0-9 . _ - (starting a-z or 0-9)")
_LOWER = string(r"[a-z0-9_.+-]+", "use lower case, as the probe reports it")
_ARCH = enum("x86_64", "arm64")
_ACCEL = string(r"(npu|gpu|dsp):[a-z0-9_.-]+", "use 'kind:vendor', kind npu|gpu|dsp, lower case")

SECTIONS: dict[str, dict[str, Checker]] = {
    "profile": {
        "name": _NAME,
        "description": string(),
        "version": string(r"[A-Za-z0-9._+-]+", "use a version such as '1' or '2.0.1'"),
        "short": enum(*SHORT_NAMES),
        "default": boolean,
        "extends": _NAME,
    },
    "match": {
        "os": str_list(enum("linux", "darwin", "windows", "android", "ios"), unique=True),
        "arch": str_list(_ARCH, unique=True),
        "cpu_vendor_any": str_list(_LOWER),
        "cpu_flags_all": str_list(_LOWER),
        "cpu_flags_any": str_list(_LOWER),
        "cpu_flags_none": str_list(_LOWER),
        "soc_any": str_list(string()),
        "accelerators_any": str_list(_ACCEL),
        "priority": integer(),
    },
    "runtime": {
        "ep": ep_name,
        "device": enum("", "cpu", "gpu", "npu"),
        "package": string(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a package name"),
        "plugin_module": string(
            r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", "a module name", empty=True
        ),
        "min_ort": string(r"\d+\.\d+(\.\d+)?", "use a version such as '1.24.2'"),
        "alternative_packages": str_list(
            string(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a package name"), unique=True
        ),
        "fallback": str_list(ep_name, unique=True),
        "simulated_on": str_list(_ARCH, unique=True),
        "provider_options": str_map(provider_option),
        "simulator_options": str_map(provider_option),
    },
    "session": {
        "graph_optimization_level": enum("disable", "basic", "extended", "layout", "all"),
        "intra_op_threads": threads,
        "inter_op_threads": integer(0),
        "execution_mode": enum("sequential", "parallel"),
        "config": str_map(config_entry),
    },
    "model": {
        "fixed_shapes": boolean,
        "ort_format": boolean,
        "offline_optimization": enum("none", "basic", "extended"),
        "fuse_transformers": boolean,
        "recipes": lambda c, k, v: _recipes(c, k, v),
    },
    "verify": {
        "metric": enum("cosine", "top1"),
        "max_drop": fraction,
        "top1_max_drop": fraction,
        "fallback": str_list(
            enum("per_channel", "exclude_sensitive", "w16a16", "fp16", "fp32"), unique=True
        ),
        "speed_gate": boolean,
    },
}
RECIPE: dict[str, Checker] = {
    "precision": enum(*PRECISIONS),
    "mode": enum("none", "dynamic", "static", "qnn", "weight_only"),
    "format": enum("qdq", "qoperator"),
    "activation_type": enum("int8", "uint8", "int16", "uint16"),
    "weight_type": enum("int8", "uint8", "int16", "uint16", "int4", "uint4"),
    "per_channel": boolean,
    "reduce_range": boolean,
    "calibrate_method": enum("minmax", "entropy", "percentile"),
    "op_types": str_list(string()),
    "nodes_to_exclude": str_list(string()),
    "float_op_types": str_list(string()),
    "keep_io_types": boolean,
    "bits": integer(allowed=(2, 4, 8)),
    "block_size": block_size,
    "symmetric_weights": boolean,
    "symmetric_activations": boolean,
    "outliers": boolean,
}
REQUIRED = ("profile.name", "profile.description", "profile.version", "profile.short", "runtime.ep")
_CLASSES = {
    "match": Match,
    "runtime": Runtime,
    "session": SessionSettings,
    "model": ModelPrep,
    "verify": Verify,
}
_DEFAULT_FALLBACK = Runtime(ep="").fallback
_HOME = {k: s for s, spec in reversed(SECTIONS.items()) for k in spec}


def _recipes(c: Collector, key: str, v: Any) -> Any:
    if not isinstance(v, dict):
        return c.bad(key, f"expected a table of recipe arrays ([[{key}.cnn]]), got {describe(v)}")
    n = len(c.problems)
    out: dict[str, tuple[Recipe, ...]] = {}
    for family, arr in v.items():
        k = f"{key}.{family}"
        if family not in FAMILIES:
            c.unknown(k, family, list(FAMILIES), "model family")
        elif not isinstance(arr, list) or not all(isinstance(t, dict) for t in arr):
            c.bad(k, f"expected an array of tables ([[{k}]]), got {describe(arr)}")
        elif not arr:
            c.bad(k, "needs at least one recipe")
        else:
            out[family] = tuple(_recipe(c, f"{k}[{i}]", t) for i, t in enumerate(arr))
    return out if len(c.problems) == n else BAD


def _recipe(c: Collector, key: str, table: dict[str, Any]) -> Any:
    kw = section(c, key, table, RECIPE)
    if kw.get("mode") == "dynamic" and "activation_type" not in table:
        kw["activation_type"] = "uint8"  # what quantize_dynamic computes
    if any(k in RECIPE and k not in kw for k in table):
        return BAD  # a bad value: combination checks would only add noise
    recipe = Recipe(**kw)
    for sub, message in recipe_rules(recipe):
        c.bad(f"{key}.{sub}", message)
    return recipe


def recipe_rules(r: Recipe) -> list[tuple[str, str]]:
    """Precision/mode/type combinations that make no sense, as (key, message)."""
    p, m, out = r.precision, r.mode, []
    act16 = r.activation_type in ("int16", "uint16")
    if p in ("fp32", "fp16") and m != "none":
        out.append(("mode", f"precision {p!r} is not quantized: mode must be 'none', got {m!r}"))
    if p == "int8" and m not in ("dynamic", "static", "qnn"):
        out.append(("mode", f"precision 'int8' needs mode 'dynamic', 'static' or 'qnn', got {m!r}"))
    if p == "int8" and act16 and m != "dynamic":
        out.append(("activation_type", "precision 'int8' has 8-bit activations; use 'w8a16'"))
    if p in ("w8a16", "w16a16") and m not in ("static", "qnn"):
        out.append(("mode", f"precision {p!r} needs mode 'static' or 'qnn', got {m!r}"))
    if p in ("w8a16", "w16a16") and not act16:
        out.append(
            (
                "activation_type",
                f"precision {p!r} needs 'int16' or 'uint16', got {r.activation_type!r}",
            )
        )
    w16 = r.weight_type in ("int16", "uint16")
    if p == "w16a16" and m == "static" and r.format != "qdq":
        out.append(("format", "precision 'w16a16' is written as QDQ: use 'qdq'"))
    if w16 and p != "w16a16":
        out.append(("weight_type", f"weight_type {r.weight_type!r} needs precision 'w16a16'"))
    if p == "w16a16" and not w16:
        out.append(
            ("weight_type", f"precision 'w16a16' needs 'int16' or 'uint16', got {r.weight_type!r}")
        )
    if p == "int4" and m != "weight_only":
        out.append(("mode", f"precision 'int4' needs mode 'weight_only' (MatMulNBits), got {m!r}"))
    if p == "int4" and r.bits != 4:
        out.append(("bits", f"precision 'int4' needs bits = 4, got {r.bits}"))
    if p != "int4" and r.weight_type in ("int4", "uint4"):
        out.append(("weight_type", f"weight_type {r.weight_type!r} needs precision 'int4'"))
    if m == "dynamic" and r.activation_type != "uint8":
        out.append(("activation_type", "mode 'dynamic' computes uint8 activations: use 'uint8'"))
    if r.outliers and m != "dynamic":
        out.append(("outliers", f"outliers applies to mode 'dynamic', got {m!r}"))
    if m == "qnn" and r.format != "qdq":
        out.append(("format", "mode 'qnn' writes QDQ (get_qnn_qdq_config): use 'qdq'"))
    if r.reduce_range and p != "int8":
        out.append(("reduce_range", f"reduce_range applies to precision 'int8' only, not {p!r}"))
    return out


def _top_level(c: Collector, raw: Mapping[str, Any]) -> None:
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                c.bad(key, f"expected a table [{key}], got {describe(value)}")
        elif key in _HOME:
            c.bad(key, f"unknown top-level key {key!r}: it belongs in [{_HOME[key]}]")
        else:
            c.unknown(key, key, list(SECTIONS), "table")


def validate(
    raw: Mapping[str, Any], path: str, *, require: bool = True
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Check one profile table. Returns (Profile keyword arguments or None, problems).

    ``require=False`` skips the missing-key checks (used when a parent profile that
    would have supplied them could not be resolved)."""
    c = Collector(path)
    _top_level(c, raw)
    tables: dict[str, Mapping[str, Any]] = {}
    for s in SECTIONS:
        table = raw.get(s)
        tables[s] = table if isinstance(table, dict) else {}
    kw = {s: section(c, s, tables[s], spec) for s, spec in SECTIONS.items()}
    # A key is missing when its table is absent or a table without it (a table of the
    # wrong type has been reported already).
    missing = [
        f"{sec}.{key}"
        for sec, key in (r.split(".") for r in REQUIRED)
        if key not in tables[sec] and isinstance(raw.get(sec, {}), dict)
    ]
    for req in missing if require else ():
        c.bad(req, "missing required key")
    runtime = kw["runtime"]
    if "fallback" in runtime and runtime.get("ep") in runtime["fallback"]:
        c.bad("runtime.fallback", f"lists the profile's own EP {runtime['ep']!r}")
    if c.problems or missing:
        return None, c.problems
    if "fallback" not in runtime:  # the default, less the profile's own EP
        runtime["fallback"] = tuple(e for e in _DEFAULT_FALLBACK if e != runtime["ep"])
    fields = dict(kw["profile"])
    fields.update({s: cls(**kw[s]) for s, cls in _CLASSES.items()})
    return fields, []
