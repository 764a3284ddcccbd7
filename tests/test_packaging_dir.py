"""packaging/ documents installs; it must never shadow PyPA's ``packaging`` package."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import REPO

PACKAGING = REPO / "packaging"


def test_packaging_dir_has_no_python_files() -> None:
    assert PACKAGING.is_dir()
    python = [p for p in PACKAGING.rglob("*") if p.suffix in (".py", ".pyc", ".pyi", ".pyx")]
    assert python == []
    assert not (PACKAGING / "__init__.py").exists()


def test_packaging_dir_holds_only_docs_and_requirement_files() -> None:
    allowed = {".md", ".toml", ".txt"}
    assert {p.suffix for p in PACKAGING.rglob("*") if p.is_file()} <= allowed
    assert (PACKAGING / "runtime-requirements.txt").is_file()


def test_import_packaging_from_repo_root_finds_pypa_packaging() -> None:
    code = "import packaging, packaging.version; print(packaging.__file__)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    found = Path(proc.stdout.strip()).resolve()
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert found.is_relative_to(site), found
    assert not found.is_relative_to(PACKAGING.resolve())


def test_requirement_files_name_no_build_side_packages() -> None:
    for path in PACKAGING.glob("*requirements*.txt"):
        names = {
            line.split(";")[0]
            .split("=")[0]
            .split(">")[0]
            .split("<")[0]
            .split("[")[0]
            .strip()
            .lower()
            for line in path.read_text("utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-"))
        }
        assert "onnx" not in names and "click" not in names, path
        assert "onnxruntime" in names or any(n.startswith("onnxruntime") for n in names), path
