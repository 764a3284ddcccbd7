"""The parsed built-in profile tables cache (edgeort.profiles._parsed): a cached table is
used only while its file is unchanged, goes through the same checks, and a broken or
foreign cache is ignored."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeort.errors import ProfileError
from edgeort.profiles import _parsed, builtin_dir, builtin_profiles
from edgeort.profiles import loader as profile_loader

NAMES = ["cpu-x86-64-vnni", "qnn-htp"]


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the built-in profiles, an empty cache, no tables remembered in-process."""
    directory = tmp_path / "profiles"
    shutil.copytree(builtin_dir(), directory)
    monkeypatch.setenv("EDGEORT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_parsed, "_entries", None)
    profile_loader._NAMED.clear()
    yield directory
    profile_loader._NAMED.clear()


def _again(directory: Path) -> list[object]:
    """A new process's view: nothing remembered, the cache file read again."""
    profile_loader._NAMED.clear()
    _parsed._entries = None
    subset = profile_loader.builtin_subset(directory, NAMES)
    assert subset is not None
    return list(subset)


def _cache_file(tmp: Path) -> Path:
    return tmp / "cache" / _parsed.FILE_NAME


def test_cached_tables_give_the_same_profiles_as_parsing(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = _again(fresh)
    cache = json.loads(_cache_file(fresh.parent).read_text())
    assert set(cache) == {os.path.realpath(fresh / f"{n}.toml") for n in [*NAMES, "cpu-x86-64"]}
    with monkeypatch.context() as m:  # every table now comes from the cache
        m.setattr(profile_loader, "read_doc", lambda path: pytest.fail(f"parsed {path}"))
        cached = _again(fresh)
    assert cached == parsed
    by_name = {p.name: p for p in builtin_profiles()}
    assert [p.name for p in cached] == NAMES  # type: ignore[attr-defined]
    for p in cached:  # equal to the full load, apart from where the files are
        assert p.description == by_name[p.name].description  # type: ignore[attr-defined]
        assert p.runtime == by_name[p.name].runtime  # type: ignore[attr-defined]


def test_an_edited_file_is_parsed_again(fresh: Path) -> None:
    _again(fresh)
    path = fresh / "qnn-htp.toml"
    text = path.read_text()
    path.write_text(text.replace('description = "', 'description = "EDITED ', 1))
    qnn = _again(fresh)[1]
    assert qnn.description.startswith("EDITED ")  # type: ignore[attr-defined]


def test_a_cached_table_is_still_checked(fresh: Path) -> None:
    _again(fresh)
    cache_file = _cache_file(fresh.parent)
    cache = json.loads(cache_file.read_text())
    real = os.path.realpath(fresh / "qnn-htp.toml")
    cache[real]["table"]["runtime"]["ep"] = "NotAnExecutionProviderName"
    cache_file.write_text(json.dumps(cache))
    with pytest.raises(ProfileError, match=r"runtime\.ep"):
        _again(fresh)


def test_a_stale_or_corrupt_cache_is_ignored(fresh: Path) -> None:
    good = _again(fresh)
    cache_file = _cache_file(fresh.parent)
    cache = json.loads(cache_file.read_text())
    real = os.path.realpath(fresh / "qnn-htp.toml")
    cache[real]["size"] += 1  # another file's stamp: not this file's table
    cache[real]["table"]["profile"]["description"] = "from a stale entry"
    cache_file.write_text(json.dumps(cache))
    assert _again(fresh) == good
    cache_file.write_text("{not json")
    assert _again(fresh) == good


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_a_cache_directory_owned_by_someone_else_is_not_used(fresh: Path) -> None:
    good = _again(fresh)
    cache_file = _cache_file(fresh.parent)
    cache = json.loads(cache_file.read_text())
    real = os.path.realpath(fresh / "qnn-htp.toml")
    cache[real]["table"]["profile"]["description"] = "planted"
    cache_file.write_text(json.dumps(cache))
    os.chown(cache_file.parent, 65534, 65534)
    try:
        assert _again(fresh) == good
    finally:
        os.chown(cache_file.parent, 0, 0)


def test_only_tables_json_carries_exactly_are_cached() -> None:
    import datetime

    assert _parsed._exact({"a": [1, 2.5, True, "x", {"b": []}]})
    assert not _parsed._exact({"when": datetime.date(2026, 1, 1)})
    assert not _parsed._exact({"x": float("inf")})
