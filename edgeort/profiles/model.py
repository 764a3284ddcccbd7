"""The profile dataclasses (the contract the rest of edgeort codes against) and their
rendering back to a dict / TOML. Imports only the stdlib (and the CPU EP's name)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeort.hardware.device import CPU_EP

__all__ = [
    "FAMILIES",
    "PRECISIONS",
    "SHORT_NAMES",
    "Match",
    "ModelPrep",
    "Profile",
    "Recipe",
    "Runtime",
    "SessionSettings",
    "Verify",
    "profile_to_dict",
    "profile_to_toml",
]

PRECISIONS = ("fp32", "fp16", "int8", "w8a16", "w16a16", "int4")
FAMILIES = ("cnn", "transformer", "default")
SHORT_NAMES = ("cpu", "openvino", "qnn", "coreml", "nnapi", "directml", "tensorrt")


@dataclass(frozen=True, slots=True)
class Match:
    """How to recognise the target. Every non-empty predicate must hold."""

    os: tuple[str, ...] = ()  # linux | darwin | windows | android | ios
    arch: tuple[str, ...] = ()  # x86_64 | arm64
    cpu_flags_all: tuple[str, ...] = ()
    cpu_flags_any: tuple[str, ...] = ()
    cpu_flags_none: tuple[str, ...] = ()
    soc_any: tuple[str, ...] = ()  # case-insensitive substrings of DeviceInfo.soc
    accelerators_any: tuple[str, ...] = ()  # "kind:vendor", e.g. "npu:qualcomm", "gpu:nvidia"
    priority: int = 0  # higher wins among profiles that fit
    cpu_vendor_any: tuple[str, ...] = ()  # DeviceInfo.cpu_vendor, e.g. "intel" (added field)


@dataclass(frozen=True, slots=True)
class Runtime:
    """Which EP runs the variant and how it is started."""

    ep: str  # exact ORT EP name, e.g. "QNNExecutionProvider"
    device: str = ""  # cpu | gpu | npu | "" (any); OrtHardwareDevice type wanted
    package: str = "onnxruntime"  # pip distribution that provides the EP
    plugin_module: str = ""  # module exposing get_library_path() for plugin EPs
    min_ort: str = "1.24.2"
    fallback: tuple[str, ...] = (CPU_EP,)
    simulated_on: tuple[str, ...] = ()  # arches where this EP only runs in simulation
    provider_options: Mapping[str, str] = field(default_factory=dict)
    # Added to provider_options only where the EP runs as a simulator (simulated_on):
    # settings of the simulated device, never written into a bundle.
    simulator_options: Mapping[str, str] = field(default_factory=dict)
    # Other wheels that provide the EP (e.g. the onnxruntime-openvino build, which
    # replaces onnxruntime and so lives in its own environment: docs/runtimes.md).
    alternative_packages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionSettings:
    graph_optimization_level: str = "all"  # disable | basic | extended | layout | all
    intra_op_threads: str | int = "performance"  # "physical" | "performance" | N (0 = ORT)
    inter_op_threads: int = 1
    execution_mode: str = "sequential"  # sequential | parallel
    config: Mapping[str, str] = field(default_factory=dict)  # add_session_config_entry


@dataclass(frozen=True, slots=True)
class Recipe:
    """One way to prepare the model's weights/activations for the target."""

    precision: str = "fp32"  # one of PRECISIONS
    mode: str = "none"  # none | dynamic | static | qnn | weight_only
    format: str = "qdq"  # qdq | qoperator
    activation_type: str = "int8"  # int8 | uint8 | int16 | uint16
    weight_type: str = "int8"  # int8 | uint8 | int16 | uint16 | int4 | uint4
    per_channel: bool = False
    reduce_range: bool = False
    calibrate_method: str = "minmax"  # minmax | entropy | percentile
    op_types: tuple[str, ...] = ()  # op types to quantize; () = the quantizer's default
    nodes_to_exclude: tuple[str, ...] = ()
    # op types left float: taken out of op_types, or of the quantizer's default set
    float_op_types: tuple[str, ...] = ()
    keep_io_types: bool = True  # fp16: inputs/outputs stay fp32
    bits: int = 4  # weight_only
    block_size: int = 128  # weight_only
    symmetric_weights: bool = True
    symmetric_activations: bool = False
    # dynamic int8: outlying input channels of MatMul/Attention measured on the calibration
    # data and kept out of the int8 range (edgeort.pack.outliers); needs calibration data.
    outliers: bool = False


@dataclass(frozen=True, slots=True)
class ModelPrep:
    fixed_shapes: bool = False
    ort_format: bool = False
    offline_optimization: str = "basic"  # none | basic | extended: level baked into the file
    fuse_transformers: bool = True
    # Candidate recipes per model family ("cnn", "transformer", "default"), best first.
    # The packager builds each, gates each, and keeps the first that passes -- or, when
    # the EP is present at build time, the fastest that passes.
    recipes: Mapping[str, tuple[Recipe, ...]] = field(default_factory=dict)

    def recipes_for(self, family: str) -> tuple[Recipe, ...]:
        return self.recipes.get(family) or self.recipes.get("default") or (Recipe(),)


@dataclass(frozen=True, slots=True)
class Verify:
    """The accuracy gate every variant must pass.

    ``max_drop`` bounds ``metric``: 1 - mean cosine for ``cosine``, points of top-1
    accuracy as a fraction (0.005 = 0.5 points) for ``top1``. ``top1_max_drop`` is the
    top-1 bound the packager applies in addition when the model is a classifier."""

    metric: str = "cosine"  # cosine | top1
    max_drop: float = 0.01
    # The bound when the packager gates a classifier on top-1 (added field).
    top1_max_drop: float = 0.005
    fallback: tuple[str, ...] = ("per_channel", "exclude_sensitive", "fp16", "fp32")
    speed_gate: bool = True


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    version: str
    short: str  # cpu | openvino | qnn | coreml | nnapi | directml | tensorrt
    runtime: Runtime
    # The profile a short name resolves to when packaging for a device that is not here.
    default: bool = False
    match: Match = field(default_factory=Match)
    session: SessionSettings = field(default_factory=SessionSettings)
    model: ModelPrep = field(default_factory=ModelPrep)
    verify: Verify = field(default_factory=Verify)
    extends: str | None = None
    source: Path | None = None  # the file it came from; None for built in code
    builtin: bool = True


# ---- rendering -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _fields(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f: _plain(getattr(obj, f)) for f in obj.__dataclass_fields__ if f not in skip}


WEIGHT_ONLY_FIELDS = ("bits", "block_size")  # used by mode = "weight_only" recipes only


def _recipe_fields(recipe: Recipe) -> dict[str, Any]:
    """A recipe's fields, without the weight-only ones (``bits``, ``block_size``) when it
    is not a weight-only recipe and they hold their defaults: a w8a16 recipe does not
    show ``bits = 4``; ``outliers`` only on dynamic recipes (or where set)."""
    out = _fields(recipe)
    if recipe.mode != "weight_only":
        for key in WEIGHT_ONLY_FIELDS:
            if out[key] == getattr(Recipe(), key):
                del out[key]
    if recipe.mode != "dynamic" and not recipe.outliers:  # a dynamic-only field
        del out["outliers"]
    return out


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """The profile in its TOML layout (every field, defaults included)."""
    head = _fields(profile, ("runtime", "match", "session", "model", "verify", "source", "builtin"))
    if head["extends"] is None:
        del head["extends"]
    model = _fields(profile.model, ("recipes",))
    model["recipes"] = {
        fam: [_recipe_fields(r) for r in rs] for fam, rs in profile.model.recipes.items()
    }
    return {
        "profile": head,
        "match": _fields(profile.match),
        "runtime": _fields(profile.runtime),
        "session": _fields(profile.session),
        "model": model,
        "verify": _fields(profile.verify),
    }


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _toml_table(header: str, table: Mapping[str, Any], out: list[str]) -> None:
    out.append(f"\n{header}")
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict):
            subtables.append((key, value))
        else:
            out.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in subtables:
        name = header.strip("[]") + "." + _toml_key(key)
        if key == "recipes":
            for family, recipes in value.items():
                for recipe in recipes:
                    _toml_table(f"[[{name}.{family}]]", recipe, out)
        else:
            _toml_table(f"[{name}]", value, out)


def profile_to_toml(profile: Profile) -> str:
    """The resolved profile as a TOML file that loads back to an equal profile."""
    out: list[str] = []
    for section, table in profile_to_dict(profile).items():
        _toml_table(f"[{section}]", table, out)
    return "\n".join(out).lstrip("\n") + "\n"
