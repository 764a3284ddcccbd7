"""docs/architecture.md's module map is the package tree: every module listed exists, and
every module that exists is listed (so the map cannot go stale when a module moves)."""

from __future__ import annotations

import re

from tests.conftest import REPO

DOC = REPO / "docs" / "architecture.md"


def map_block(text: str) -> list[str]:
    section = text.split("## Module map", 1)[1]
    return section.split("```", 2)[1].strip("\n").splitlines()


def mapped_paths(lines: list[str]) -> set[str]:
    """``edgeort/hardware/ep.py`` etc. from the indented tree (two spaces per level)."""
    stack: list[str] = []
    out: set[str] = set()
    for line in lines:
        match = re.match(r"( *)(\S+)", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 2
        name = match.group(2)
        del stack[depth:]
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
        else:
            out.add("/".join([*stack, name]))
    return out


def tree_paths() -> set[str]:
    return {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "edgeort").rglob("*.py")
        if "__pycache__" not in p.parts
    }


def test_module_map_matches_the_tree() -> None:
    listed = mapped_paths(map_block(DOC.read_text("utf-8")))
    actual = tree_paths()
    assert sorted(listed - actual) == [], "listed in docs/architecture.md but not in the tree"
    assert sorted(actual - listed) == [], "in the tree but missing from docs/architecture.md"


def test_the_map_reader_sees_a_missing_module() -> None:
    """A map without one module differs from the tree (the check can fail)."""
    lines = [ln for ln in map_block(DOC.read_text("utf-8")) if "ep.py" not in ln]
    assert "edgeort/hardware/ep.py" in tree_paths() - mapped_paths(lines)


def test_docs_never_point_outside_the_repository() -> None:
    for doc in (REPO / "docs").glob("*.md"):
        assert "../shared" not in doc.read_text("utf-8"), doc
