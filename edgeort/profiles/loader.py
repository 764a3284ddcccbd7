"""Profile files -> resolved profiles: reading, ``extends``, and the rules for a set.

Read by :mod:`edgeort.profiles`; the rules are documented in ``docs/profiles.md``
("Resolution"). Nothing here raises for a user's mistake: every function returns the
problems it found, and the public API in :mod:`edgeort.profiles` raises them at once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeort.errors import Problem, ProfileError
from edgeort.profiles import Profile, profile_to_dict
from edgeort.profiles.schema import suggest, validate

__all__ = [
    "Doc",
    "builtin_subset",
    "check_defaults",
    "list_user_files",
    "load_set",
    "read_doc",
    "resolve",
]

_FILE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # a profile name (the schema's rule)
_NAMED: dict[tuple[str, str], Profile | None] = {}  # built-ins read one by one: (dir, name)


@dataclass(slots=True)
class Doc:
    """One profile file as read: its TOML table, or the problems that stopped reading."""

    path: Path
    raw: dict[str, Any] | None
    problems: list[Problem] = field(default_factory=list)

    def _profile_key(self, key: str) -> str | None:
        table = (self.raw or {}).get("profile")
        value = table.get(key) if isinstance(table, dict) else None
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        return self._profile_key("name")

    @property
    def extends(self) -> str | None:
        return self._profile_key("extends")


def read_doc(path: Path) -> Doc:
    def fail(message: str) -> Doc:
        return Doc(path, None, [Problem(str(path), "", message)])

    try:
        data = path.read_bytes()
    except OSError as exc:
        return fail(f"cannot read profile file: {exc.strerror or exc}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return fail(f"not UTF-8 text (bad byte at offset {exc.start})")
    import tomllib  # not needed when a built-in profile's table is cached (_parsed)

    try:
        return Doc(path, tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        return fail(f"invalid TOML: {exc}")
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5000 digits
        return fail(f"invalid TOML: {exc or type(exc).__name__}")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge tables; any other value (arrays included) replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _inherited(parent: Profile, *, replacing: bool) -> dict[str, Any]:
    data = profile_to_dict(parent)
    data["profile"].pop("name")
    data["profile"].pop("extends", None)
    if not replacing:  # a child is a default only if it says so
        data["profile"].pop("default")
    return data


def resolve(
    docs: Sequence[Doc], base: Mapping[str, Profile], *, builtin: bool
) -> tuple[list[Profile], list[Problem]]:
    """Validate each doc, after merging it over the profile it ``extends``.

    A parent is another doc (by name, first definition wins) or a ``base`` profile;
    ``extends`` naming the doc's own name means the ``base`` profile it replaces."""
    problems = [p for d in docs for p in d.problems]
    by_name: dict[str, int] = {}
    for i, d in enumerate(docs):
        if d.raw is not None and d.name is not None:
            by_name.setdefault(d.name, i)
    memo: dict[int, Profile | None] = {}

    def bad(i: int, message: str) -> None:
        problems.append(Problem(str(docs[i].path), "profile.extends", message))

    def parent_of(i: int, stack: list[int]) -> tuple[Profile | None, bool]:
        """(parent, resolved ok). A failure has been reported when ok is False."""
        d, ext = docs[i], docs[i].extends
        if ext is None:
            return None, True
        if ext == d.name:
            if ext in base:
                return base[ext], True
            bad(i, f"profile {ext!r} extends itself")
        elif ext in by_name:
            j = by_name[ext]
            if j in stack:
                cycle = [*stack[stack.index(j) :], i]
                names = " -> ".join(str(docs[k].name) for k in [*cycle, cycle[0]])
                for k in cycle:
                    memo[k] = None
                    bad(k, f"extends cycle: {names}")
                return None, False
            parent = run(j, [*stack, i])
            if parent is not None:
                return parent, True
            if i not in memo:
                bad(i, f"cannot extend {ext!r}: it has problems ({docs[j].path})")
        elif ext in base:
            return base[ext], True
        else:
            known = sorted({*base, *by_name})
            bad(i, f"unknown profile {ext!r}{suggest(ext, known)}")
        return None, False

    def run(i: int, stack: list[int]) -> Profile | None:
        if i in memo:
            return memo[i]
        d = docs[i]
        assert d.raw is not None
        parent, ok = parent_of(i, stack)
        if i in memo:  # failed inside a cycle
            return None
        raw = d.raw
        if parent is not None:
            raw = _merge(_inherited(parent, replacing=d.extends == d.name), raw)
        fields, found = validate(raw, str(d.path), require=ok)
        problems.extend(found)
        profile = None
        if ok and fields is not None:
            profile = Profile(**fields, source=d.path, builtin=builtin)
        memo[i] = profile
        return profile

    for i, d in enumerate(docs):
        if d.raw is not None:
            run(i, [])
    return [p for i, p in sorted(memo.items()) if p is not None], problems


def _where(profile: Profile) -> str:
    kind = "the built-in profile" if profile.builtin else "the profile"
    return f"{kind} in {profile.source}" if profile.source else f"{kind} {profile.name!r}"


def _add(base: Sequence[Profile], new: Sequence[Profile]) -> tuple[list[Profile], list[Problem]]:
    """Add ``new`` profiles after ``base`` ones; a replacement keeps its place."""
    problems: list[Problem] = []
    final = {p.name: p for p in base}
    seen: dict[str, Profile] = {}
    for p in new:
        where = str(p.source)
        if p.name in seen:
            msg = f"{p.name!r} is already the name of {_where(seen[p.name])}"
            problems.append(Problem(where, "profile.name", msg))
            continue
        seen[p.name] = p
        if p.name in final and p.extends != p.name:
            msg = (
                f"{p.name!r} is the name of {_where(final[p.name])}: choose another name, "
                f"or set extends = {p.name!r} to replace it"
            )
            problems.append(Problem(where, "profile.name", msg))
            continue
        final[p.name] = p
    # A new default takes its short name over from the profiles it was added to.
    takers = {p.short for p in seen.values() if p.default and final.get(p.name) is p}
    for name, p in final.items():
        if p.short in takers and p.default and p.name not in seen:
            final[name] = dataclasses.replace(p, default=False)
    return list(final.values()), problems


def check_defaults(profiles: Sequence[Profile], fallback_path: str) -> list[Problem]:
    """Each short name in use has exactly one default profile."""
    problems = []
    for short in dict.fromkeys(p.short for p in profiles):
        group = [p for p in profiles if p.short == short]
        defaults = [p for p in group if p.default]
        if len(defaults) == 1:
            continue
        if defaults:
            names = ", ".join(p.name for p in defaults)
            msg = f"short name {short!r} has {len(defaults)} default profiles ({names}); keep one"
            targets = defaults
        else:
            names = ", ".join(p.name for p in group)
            msg = (
                f"short name {short!r} has no default profile; set default = true on one of {names}"
            )
            targets = group[:1]
        for p in targets:
            problems.append(Problem(str(p.source or fallback_path), "profile.default", msg))
    return problems


def load_set(
    docs: Sequence[Doc], base: Sequence[Profile], *, builtin: bool, where: str
) -> tuple[list[Profile], list[Problem]]:
    """Resolve ``docs`` over ``base`` and apply the rules of a whole set."""
    resolved, problems = resolve(docs, {p.name: p for p in base}, builtin=builtin)
    final, more = _add(base, resolved)
    problems += more
    problems += check_defaults(final, where)
    return final, problems


def list_user_files(directory: Path) -> tuple[list[Path], list[Problem]]:
    """The ``*.toml`` files in the user profile directory; none when it does not exist.
    A directory that cannot be read (``stat`` or listing refused) is one problem."""
    try:
        if not directory.exists():
            return [], []
        return sorted(p for p in directory.iterdir() if p.suffix == ".toml"), []
    except OSError as exc:
        why = exc.strerror or str(exc)
        return [], [Problem(str(directory), "", f"cannot read the user profile directory: {why}")]


def _read_builtin(path: Path) -> Doc:
    """A built-in profile file: its cached table when the file is unchanged (still
    checked and resolved like a parsed one), else parsed and cached."""
    from edgeort.profiles import _parsed

    table = _parsed.lookup(path)
    if table is not None:
        return Doc(path, table)
    doc = read_doc(path)
    if not doc.problems and doc.raw is not None:
        _parsed.store(path, doc.raw)
    return doc


def _builtin_one(directory: Path, name: str, seen: tuple[str, ...]) -> Profile | None:
    """The built-in profile ``name`` from ``<directory>/<name>.toml`` (its ``extends``
    parent first); None when there is no such file. Raises for a broken file."""
    key = (str(directory), name)
    if key in _NAMED:
        return _NAMED[key]
    path = directory / f"{name}.toml"
    if not _FILE_NAME.fullmatch(name) or name in seen or not path.is_file():
        return None
    doc = _read_builtin(path)
    if doc.problems:
        raise ProfileError(doc.problems)
    base: dict[str, Profile] = {}
    parent = doc.extends
    if parent is not None and parent != doc.name:
        found = _builtin_one(directory, parent, (*seen, name))
        base = {found.name: found} if found is not None else {}
    profiles, problems = resolve([doc], base, builtin=True)
    if problems:
        raise ProfileError(problems)
    profile = profiles[0] if profiles and profiles[0].name == name else None
    _NAMED[key] = profile
    return profile


def builtin_subset(directory: Path, names: Sequence[str]) -> list[Profile] | None:
    """The built-in profiles called ``names`` (unknown names left out), each read from
    its own file ``<name>.toml`` with its ``extends`` parents: equal to those in
    ``builtin_profiles()``. None when a file does not follow the one-file-per-name
    convention (the caller then loads them all)."""
    out: list[Profile] = []
    for name in dict.fromkeys(names):
        path = directory / f"{name}.toml"
        profile = _builtin_one(directory, name, ())
        if profile is None and _FILE_NAME.fullmatch(name) and path.is_file():
            return None  # the file holds another name
        if profile is not None:
            out.append(profile)
    return out
