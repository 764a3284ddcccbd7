"""Path rules for everything a bundle names (docs/bundle-format.md, section 6).

Pure string checks: they run before any file system access, so a hostile name never
reaches ``open``. ``path_problem`` returns why a path is unsafe (or ``None``);
``twin_problems`` finds names that collide on case-insensitive or normalising file systems.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["NAME_RE", "option_value_problem", "path_problem", "twin_problems"]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096
_FORBIDDEN_CHARS = set(':*?"<>|\\')
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}
_PATHISH_KEYS = ("path", "file", "dir", "folder", "library")


def _component_problem(part: str) -> str | None:
    if part in ("", ".", ".."):
        return f"has an empty, '.' or '..' component ({part!r})"
    if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        return f"has a component longer than {MAX_COMPONENT_BYTES} bytes"
    if part[-1] in ". ":
        return f"has a component ending with a dot or space ({part!r})"
    if part.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        return f"uses the reserved Windows device name {part!r}"
    return None


def path_problem(path: object) -> str | None:
    """Why ``path`` is not a safe relative bundle path, or None when it is."""
    if not isinstance(path, str):
        return "is not a string"
    if not path:
        return "is empty"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "contains NUL or a control character"
    if path.startswith("/"):
        return "is absolute"
    if path.startswith("\\\\"):
        return "is a UNC path"
    if len(path) >= 2 and path[1] == ":" and path[0].isalpha():
        return "starts with a drive letter"
    if "\\" in path:
        return "contains a backslash (use '/')"
    bad = sorted(set(path) & _FORBIDDEN_CHARS)
    if bad:
        return f"contains forbidden characters {''.join(bad)!r}"
    for part in path.split("/"):
        problem = _component_problem(part)
        if problem:
            return problem
    return None


def _fold(path: str) -> str:
    return unicodedata.normalize("NFC", path).casefold()


def twin_problems(paths: Iterable[str]) -> list[str]:
    """Problems for listed file paths that collide: equal after NFC + casefold, or a
    file that is also a directory prefix of another file."""
    problems: list[str] = []
    files: dict[str, str] = {}
    dirs: dict[str, str] = {}
    for path in paths:
        key = _fold(path)
        if key in files:
            other = files[key]
            what = (
                "listed twice" if other == path else f"collides with {other!r} (case/Unicode twin)"
            )
            problems.append(f"{path!r} {what}")
            continue
        files[key] = path
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            seen = dirs.setdefault(_fold(prefix), prefix)
            if seen != prefix:
                problems.append(f"directory {prefix!r} collides with {seen!r} (case/Unicode twin)")
    for key, path in files.items():
        if key in dirs:
            problems.append(f"{path!r} is both a file and a directory")
    return problems


def option_value_problem(key: str, value: str) -> str | None:
    """Path-like ORT options must stay relative and inside the bundle."""
    if not any(word in key.lower() for word in _PATHISH_KEYS) or not value:
        return None
    if "\x00" in value:
        return "contains NUL"
    if value.startswith(("/", "\\")) or (len(value) >= 2 and value[1] == ":"):
        return "is an absolute, drive or UNC path"
    if ".." in re.split(r"[\\/]", value):
        return "contains a '..' component"
    return None
