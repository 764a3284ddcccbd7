"""Version strings as comparable tuples (profiles, the version guard and the packager
compare ONNX Runtime versions the same way)."""

from __future__ import annotations

import re

__all__ = ["version_tuple"]


def version_tuple(text: str) -> tuple[int, ...]:
    """``"1.32.0"`` -> ``(1, 32, 0)``; stops at the first non-numeric part (``1.33.0rc1``
    -> ``(1, 33, 0)``)."""
    parts: list[int] = []
    for piece in str(text).strip().split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):
            break
    return tuple(parts)
