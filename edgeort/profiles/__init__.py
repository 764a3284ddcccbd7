"""Device profiles: TOML files -> validated, frozen :class:`Profile` objects.

The schema is documented field by field in ``docs/profiles.md``. Loading reports every
problem of every file at once in one :class:`~edgeort.errors.ProfileError`.

The dataclasses (:mod:`edgeort.profiles.model`) are the contract the rest of edgeort
codes against. The schema checks live in :mod:`edgeort.profiles.schema` (field checkers in
:mod:`edgeort.profiles.checks`), reading and ``extends`` in :mod:`edgeort.profiles.loader`
(these import only the stdlib, ``tomllib`` included), matching profiles to a device in
:mod:`edgeort.profiles.match`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

from edgeort._dirs import builtin_profile_dir as builtin_dir
from edgeort._dirs import config_dir
from edgeort._log import get_logger
from edgeort.errors import Problem, ProfileError
from edgeort.profiles.model import (
    FAMILIES,
    PRECISIONS,
    SHORT_NAMES,
    Match,
    ModelPrep,
    Profile,
    Recipe,
    Runtime,
    SessionSettings,
    Verify,
    profile_to_dict,
    profile_to_toml,
)

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

log = get_logger(__name__)


# ---- loading -------------------------------------------------------------------------


def user_profile_dir() -> Path:
    """``<platformdirs user config dir>/profiles`` (``$EDGEORT_CONFIG_DIR/profiles``)."""
    return config_dir() / "profiles"


@functools.cache
def builtin_profiles() -> tuple[Profile, ...]:
    """The profiles shipped with edgeort (loaded once)."""
    from edgeort.profiles.loader import load_set, read_doc

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
    from edgeort.profiles.loader import read_doc, resolve

    base = {p.name: p for p in builtin_profiles()} if known is None else dict(known)
    profiles, problems = resolve([read_doc(Path(path))], base, builtin=False)
    if problems or not profiles:
        raise ProfileError(problems)
    return profiles[0]


def _user_files() -> tuple[list[Path], list[Problem]]:
    from edgeort.profiles.loader import list_user_files

    return list_user_files(user_profile_dir())


def profiles_for(names: Iterable[str]) -> tuple[Profile, ...]:
    """The profiles called ``names`` as :func:`load_profiles` resolves them (unknown names
    are left out; more profiles may be included): what :func:`edgeort.load` ranks with.

    With no user profiles, only the built-in files of those names (and their ``extends``
    parents) are read. A user profile directory that cannot be read is logged as a
    warning and skipped, so it never stops a bundle from loading."""
    from edgeort.profiles.loader import builtin_subset

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
    from edgeort.profiles.loader import load_set, read_doc

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
    from edgeort.profiles.schema import suggest

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
