"""Device profiles: TOML files -> validated, frozen :class:`Profile` objects.

The schema is documented field by field in ``docs/profiles.md``. Loading reports every
problem of every file at once in one :class:`~edgeort.errors.ProfileError`.

The dataclasses below are the contract the rest of edgeort codes against. The schema
checks live in :mod:`edgeort._profile_schema`, reading and ``extends`` in
:mod:`edgeort._profile_load`; both import only the stdlib (``tomllib``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeort._dirs import config_dir
from edgeort.errors import Problem, ProfileError

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
    "builtin_dir",
    "builtin_profiles",
    "check_profile_file",
    "get_profile",
    "load_profile_file",
    "load_profiles",
    "profile_to_dict",
    "profile_to_toml",
    "profiles_for",
    "user_profile_dir",
]

PRECISIONS = ("fp32", "fp16", "int8", "w8a16", "int4")
FAMILIES = ("cnn", "transformer", "default")
SHORT_NAMES = ("cpu", "openvino", "qnn", "coreml", "nnapi", "directml", "tensorrt")

log = logging.getLogger(__name__)


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
    fallback: tuple[str, ...] = ("CPUExecutionProvider",)
    simulated_on: tuple[str, ...] = ()  # arches where this EP only runs in simulation
    provider_options: Mapping[str, str] = field(default_factory=dict)
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
    weight_type: str = "int8"  # int8 | uint8 | int4 | uint4
    per_channel: bool = False
    reduce_range: bool = False
    calibrate_method: str = "minmax"  # minmax | entropy | percentile
    op_types: tuple[str, ...] = ()  # op types to quantize; () = the quantizer's default
    nodes_to_exclude: tuple[str, ...] = ()
    keep_io_types: bool = True  # fp16: inputs/outputs stay fp32
    bits: int = 4  # weight_only
    block_size: int = 128  # weight_only
    symmetric_weights: bool = True
    symmetric_activations: bool = False


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


# ---- loading -------------------------------------------------------------------------


def builtin_dir() -> Path:
    """Where the built-in profiles are: ``edgeort/_profiles`` in a wheel, else the
    repository's ``profiles/`` (a checkout or editable install)."""
    here = Path(__file__).resolve().parent
    wheel = here / "_profiles"
    return wheel if wheel.is_dir() else here.parent / "profiles"


def user_profile_dir() -> Path:
    """``<platformdirs user config dir>/profiles`` (``$EDGEORT_CONFIG_DIR/profiles``)."""
    return config_dir() / "profiles"


@functools.cache
def builtin_profiles() -> tuple[Profile, ...]:
    """The profiles shipped with edgeort (loaded once)."""
    from edgeort._profile_load import load_set, read_doc

    directory = builtin_dir()
    docs = [read_doc(p) for p in sorted(directory.glob("*.toml"))]
    profiles, problems = load_set(docs, (), builtin=True, where=str(directory))
    if not docs:
        problems.append(Problem(str(directory), "", "no built-in profiles found"))
    if problems:
        raise ProfileError(problems)
    return tuple(profiles)


def load_profile_file(path: str | Path, *, known: Mapping[str, Profile] | None = None) -> Profile:
    """Load one profile file. ``extends`` resolves against ``known`` (default: the
    built-in profiles). Raises :class:`ProfileError` listing every problem."""
    from edgeort._profile_load import read_doc, resolve

    base = {p.name: p for p in builtin_profiles()} if known is None else dict(known)
    profiles, problems = resolve([read_doc(Path(path))], base, builtin=False)
    if problems or not profiles:
        raise ProfileError(problems)
    return profiles[0]


def _user_files() -> tuple[list[Path], list[Problem]]:
    from edgeort._profile_load import list_user_files

    return list_user_files(user_profile_dir())


def profiles_for(names: Iterable[str]) -> tuple[Profile, ...]:
    """The profiles called ``names`` as :func:`load_profiles` resolves them (unknown names
    are left out; more profiles may be included): what :func:`edgeort.load` ranks with.

    With no user profiles, only the built-in files of those names (and their ``extends``
    parents) are read. A user profile directory that cannot be read is logged as a
    warning and skipped, so it never stops a bundle from loading."""
    from edgeort._profile_load import builtin_subset

    names = tuple(names)
    files, problems = _user_files()
    for problem in problems:
        log.warning("%s: %s; user profiles skipped", problem.path, problem.message)
    if files:
        return load_profiles()
    if builtin_profiles.cache_info().currsize:  # loaded already
        return builtin_profiles()
    subset = builtin_subset(builtin_dir(), names)
    return builtin_profiles() if subset is None else tuple(subset)


def _load(extra_paths: Iterable[str | Path], user_dir: bool) -> tuple[list[Profile], list[Problem]]:
    from edgeort._profile_load import load_set, read_doc

    paths, problems = _user_files() if user_dir else ([], [])
    seen = {p.resolve() for p in paths}
    for extra in map(Path, extra_paths):
        if extra.resolve() not in seen:
            seen.add(extra.resolve())
            paths.append(extra)
    where = str(user_profile_dir())
    profiles, found = load_set(
        [read_doc(p) for p in paths], builtin_profiles(), builtin=False, where=where
    )
    return profiles, problems + found


def load_profiles(
    extra_paths: Iterable[str | Path] = (), *, user_dir: bool = True
) -> tuple[Profile, ...]:
    """Built-in profiles, then ``*.toml`` in :func:`user_profile_dir`, then
    ``extra_paths`` (``--profile FILE``). Raises :class:`ProfileError` with every problem."""
    profiles, problems = _load(extra_paths, user_dir)
    if problems:
        raise ProfileError(problems)
    return tuple(profiles)


def check_profile_file(path: str | Path) -> Profile:
    """Check one file as it would load beside the built-in and user profiles.

    Raises :class:`ProfileError` with every problem of that file (problems of other
    user files are not this file's, and are left out)."""
    path = Path(path)
    for builtin in builtin_profiles():
        if builtin.source is not None and builtin.source.resolve() == path.resolve():
            return builtin
    profiles, problems = _load([path], user_dir=True)
    mine = [p for p in problems if p.path == str(path)]
    found = [p for p in profiles if p.source is not None and p.source.resolve() == path.resolve()]
    if mine or not found:
        raise ProfileError(mine or problems or [Problem(str(path), "", "no profile loaded")])
    return found[0]


def get_profile(name: str, profiles: Iterable[Profile] | None = None) -> Profile:
    """The profile called ``name``; a short name (``cpu``) gives its default profile."""
    from edgeort._profile_schema import suggest

    pool = tuple(load_profiles() if profiles is None else profiles)
    for p in pool:
        if p.name == name:
            return p
    for p in pool:
        if p.short == name and p.default:
            return p
    names = [p.name for p in pool]
    shorts = list(dict.fromkeys(p.short for p in pool))
    hint = suggest(name, names + shorts, listing=False).removeprefix("; ")
    known = f"profiles: {', '.join(names)}; short names: {', '.join(shorts)}"
    message = f"unknown profile; {hint + ' ' if hint else ''}{known}"
    raise ProfileError([Problem(name, "", message)])


# ---- rendering -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _fields(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f: _plain(getattr(obj, f)) for f in obj.__dataclass_fields__ if f not in skip}


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """The profile in its TOML layout (every field, defaults included)."""
    head = _fields(profile, ("runtime", "match", "session", "model", "verify", "source", "builtin"))
    if head["extends"] is None:
        del head["extends"]
    model = _fields(profile.model, ("recipes",))
    model["recipes"] = {fam: [_fields(r) for r in rs] for fam, rs in profile.model.recipes.items()}
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
