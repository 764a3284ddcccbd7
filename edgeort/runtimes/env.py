"""Target runtimes on disk: create, find, check and remove isolated environments.

A runtime is a virtual environment under :func:`runtimes_dir` (``<cache>/runtimes/<name>``,
or ``$EDGEORT_RUNTIMES_DIR/<name>``) holding one ONNX Runtime build and version
(``onnxruntime-openvino==1.24.1``, ``onnxruntime==1.24.4``, a plugin...) plus edgeort's
light runtime: ``numpy``, ``psutil``, ``platformdirs`` and edgeort's own pure-Python
package, copied from this installation (what ``pip install --no-deps edgeort`` installs),
never ``onnx`` or ``click``. The copy is refreshed whenever this edgeort's files differ,
so the worker always speaks this edgeort's protocol and runs its loader.

Layout: ``<root>/venv/`` (the environment), ``<root>/runtime.json`` (recipe, installer,
what the worker reported at creation), ``<root>/install.log``. A runtime is built in a
``.edgeort-tmp-*`` directory beside it and renamed into place only when its worker has
answered, so a runtime directory is complete or absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeort._fs import TMP_PREFIX, atomic_write_text, os_error_text
from edgeort.errors import RuntimeEnvError, UsageError

__all__ = [
    "BUILTIN_RECIPES",
    "LIGHT_REQUIREMENTS",
    "Recipe",
    "Runtime",
    "add",
    "get",
    "health",
    "list_runtimes",
    "recipe_for_ep",
    "remove",
    "runtimes_dir",
    "sync_edgeort",
]

log = logging.getLogger(__name__)

LIGHT_REQUIREMENTS = ("numpy>=1.26", "psutil>=5.9", "platformdirs>=4")
INSTALL_TIMEOUT = 1200.0
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# pip/uv messages of an unreachable index (never a bad pin: "No matching distribution"
# and "Could not find a version" are a wrong requirement, not a network failure).
NETWORK_HINTS = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ProxyError",
    "Read timed out",
    "ConnectTimeoutError",
    "SSLError",
    "dns error",
    "error sending request",
)


@dataclass(frozen=True, slots=True)
class Recipe:
    """What a runtime installs. ``eps``: the EPs it is meant to run (besides the CPU EP)."""

    name: str
    requirements: tuple[str, ...]
    description: str
    eps: tuple[str, ...] = ()
    builtin: bool = True


BUILTIN_RECIPES: dict[str, Recipe] = {
    "openvino": Recipe(
        "openvino",
        ("onnxruntime-openvino==1.24.1",),
        "classic onnxruntime-openvino build: ORT 1.24.1 with the OpenVINO EP compiled in "
        "(runs on AMD CPUs too, where Intel does not officially support it)",
        ("OpenVINOExecutionProvider",),
    ),
    "cpu-1.24": Recipe(
        "cpu-1.24",
        ("onnxruntime==1.24.4",),
        "stock onnxruntime 1.24.4, CPU EP: an older runtime than the build host's (skew)",
    ),
    "qnn": Recipe(
        "qnn",
        ("onnxruntime-qnn==2.7.0",),
        "stock onnxruntime with the onnxruntime-qnn plugin (HTP simulator on x86-64)",
        ("QNNExecutionProvider",),
    ),
}


def runtimes_dir() -> Path:
    """``$EDGEORT_RUNTIMES_DIR``, else ``<edgeort cache dir>/runtimes``."""
    env = os.environ.get("EDGEORT_RUNTIMES_DIR")
    if env:
        return Path(env)
    from edgeort._dirs import cache_dir

    return cache_dir() / "runtimes"


def recipe_for_ep(ep: str) -> Recipe | None:
    """The built-in recipe meant to run ``ep`` (e.g. OpenVINO -> ``openvino``)."""
    return next((r for r in BUILTIN_RECIPES.values() if ep in r.eps), None)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"runtime name {name!r}: expected 1-64 of a-z 0-9 . _ - (starting with a letter "
            "or digit)",
            option="NAME",
        )
    return name


@dataclass(frozen=True, slots=True)
class Runtime:
    """One created runtime, as recorded in its ``runtime.json``."""

    name: str
    root: Path
    requirements: tuple[str, ...]
    installer: str
    created: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        venv = self.root / "venv"
        return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    @property
    def ort_version(self) -> str | None:
        return self.info.get("onnxruntime")

    @property
    def ort_build(self) -> str:
        """``onnxruntime-openvino 1.24.1``: the distribution and its version."""
        return f"{self.info.get('ort_build', '?')} {self.info.get('ort_build_version', '?')}"

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.info.get("providers", ()))

    def runs(self, ep: str) -> bool:
        """Whether ``ep`` can run here: compiled in, or a plugin that lists a device."""
        devices = self.info.get("ep_devices", ())
        plugins = {p.get("ep") for p in self.info.get("plugins", ())}
        if any(str(d).startswith(f"{ep}:") for d in devices):
            return True
        return ep in self.providers and ep not in plugins

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.root),
            "requirements": list(self.requirements),
            "installer": self.installer,
            "created": self.created,
            "info": self.info,
        }

    @classmethod
    def read(cls, root: Path) -> Runtime:
        path = root / "runtime.json"
        try:
            data = json.loads(path.read_text("utf-8"))
            return cls(
                name=str(data["name"]),
                root=root,
                requirements=tuple(data["requirements"]),
                installer=str(data.get("installer", "?")),
                created=str(data.get("created", "?")),
                info=dict(data.get("info", {})),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RuntimeEnvError(
                f"runtime {root.name}: {path} is unreadable ({exc}); remove it with "
                f"edgeort runtimes remove {root.name} and add it again",
                runtime=root.name,
                path=path,
            ) from exc

    def worker(self, *, timeout: float | None = None) -> Any:
        """A started :class:`~edgeort.runtimes.client.Worker` in this runtime (edgeort's
        copy refreshed first). Raises :class:`RuntimeEnvError` when the runtime's ORT is
        no longer the one it was created with."""
        from edgeort.runtimes.client import DEFAULT_TIMEOUT, Worker

        if not self.python.exists():
            raise RuntimeEnvError(
                f"runtime {self.name}: {self.python} is missing; remove and add it again",
                runtime=self.name,
            )
        with _locked(self.root):
            sync_edgeort(self.root)
        worker = Worker(self.python, name=self.name, timeout=timeout or DEFAULT_TIMEOUT)
        have = worker.hello.get("ort_build_version")
        want = self.info.get("ort_build_version")
        if want and have != want:
            worker.close()
            raise RuntimeEnvError(
                f"runtime {self.name} was created with {self.ort_build} but its worker now "
                f"runs {worker.hello.get('ort_build')} {have}: re-create it with "
                f"edgeort runtimes add {self.name} --force",
                runtime=self.name,
            )
        return worker


# -- edgeort's own files in the runtime ------------------------------------------------


def _host_files() -> list[tuple[Path, str]]:
    """(file, path inside site-packages) of this edgeort's package and built-in profiles."""
    import edgeort
    from edgeort.profiles import builtin_dir

    pkg = Path(edgeort.__file__).resolve().parent
    files = [
        (f, f"edgeort/{f.relative_to(pkg).as_posix()}")
        for f in sorted(pkg.rglob("*"))
        if f.is_file() and "__pycache__" not in f.parts and f.suffix in (".py", ".toml", ".json")
        and not f.relative_to(pkg).as_posix().startswith("_profiles/")
    ]  # fmt: skip
    profiles = builtin_dir()
    files += [(f, f"edgeort/_profiles/{f.name}") for f in sorted(profiles.glob("*.toml"))]
    return files


def _digest(files: Sequence[tuple[Path, str]]) -> str:
    h = hashlib.sha256()
    for path, rel in files:
        h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _site_packages(root: Path) -> Path:
    data = json.loads((root / "runtime.json").read_text("utf-8"))
    return root / str(data["site_packages"])


def sync_edgeort(root: Path, site: Path | None = None) -> bool:
    """Copy this edgeort's package into the runtime at ``root`` when its files differ
    (compared by digest); returns whether it copied."""
    site = site or _site_packages(root)
    files = _host_files()
    digest = _digest(files)
    marker = site / "edgeort" / ".edgeort-source-digest"
    with contextlib.suppress(OSError):
        if marker.read_text("utf-8").strip() == digest:
            return False
    staging = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=site))
    try:
        for path, rel in files:
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        (staging / "edgeort" / ".edgeort-source-digest").write_text(digest, "utf-8")
        old = site / "edgeort"
        if old.exists():
            trash = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=site))
            old.rename(trash / "edgeort")
            (staging / "edgeort").rename(old)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            (staging / "edgeort").rename(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("runtime %s: edgeort's files refreshed", root.name)
    return True


# -- creating --------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """An exclusive lock on ``<root>.lock`` (one creator or refresher at a time)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = root.parent / f".{root.name}.lock"
    with open(lock, "a+b") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _run(cmd: Sequence[str], log_file: Path, what: str, name: str) -> None:
    with open(log_file, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            proc = subprocess.run(
                list(cmd), capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeEnvError(
                f"runtime {name}: {what} took longer than {INSTALL_TIMEOUT:g} s", runtime=name
            ) from exc
        except OSError as exc:
            raise RuntimeEnvError(f"runtime {name}: cannot run {cmd[0]}: {exc}") from exc
        fh.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).strip()
        lines = [ln for ln in text.splitlines() if ln.strip() and "Location" not in ln]
        network = any(h in text for h in NETWORK_HINTS)
        kind = "network failure: " if network else ""
        raise RuntimeEnvError(
            f"runtime {name}: {what} failed ({kind}{' | '.join(lines[-6:])}); full log: {log_file}",
            runtime=name,
            network=network,
        )


def _host_pip_ok() -> bool:
    """This Python has pip >= 22.3 (``pip --python`` installs into another venv)."""
    try:
        from importlib.metadata import version

        parts = tuple(int(p) for p in version("pip").split(".")[:2])
    except Exception:
        return False
    return parts >= (22, 3)


def _install(venv: Path, requirements: Sequence[str], log_file: Path, name: str) -> str:
    """Create ``venv`` and install ``requirements``; returns the installer used."""
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    reqs = [*requirements, *LIGHT_REQUIREMENTS]
    uv = shutil.which("uv")
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], log_file, "uv", name)
        _run([uv, "pip", "install", "--python", str(python), *reqs], log_file, "uv pip", name)
        return "uv"
    if _host_pip_ok():
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], log_file, "venv", name)
        pip = [sys.executable, "-m", "pip", "--python", str(python)]
        _run([*pip, "install", *reqs], log_file, "pip install", name)
        return "venv+pip"
    _run([sys.executable, "-m", "venv", str(venv)], log_file, "venv", name)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, *reqs], log_file, "pip install", name)
    return "venv+pip"


def _site_of(python: Path, name: str) -> Path:
    proc = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeEnvError(f"runtime {name}: its Python does not start: {proc.stderr[-500:]}")
    return Path(proc.stdout.strip())


def _requirements(name: str, requirements: Sequence[str] | None) -> tuple[str, ...]:
    if requirements:
        reqs = tuple(str(r).strip() for r in requirements if str(r).strip())
        bad = [r for r in reqs if r.split("==")[0].strip().lower() in ("onnx", "click")]
        if bad:
            raise UsageError(
                f"runtime {name}: {', '.join(bad)} would make it more than a device runtime "
                "(no onnx, no click)",
                option="--requirement",
            )
        return reqs
    recipe = BUILTIN_RECIPES.get(name)
    if recipe is None:
        raise UsageError(
            f"no built-in runtime {name!r} (built-in: {', '.join(BUILTIN_RECIPES)}); give "
            "its requirements: edgeort runtimes add NAME -r 'onnxruntime==1.24.4' "
            "(or -r requirements.txt)",
            option="NAME",
        )
    return recipe.requirements


def add(
    name: str,
    requirements: Sequence[str] | None = None,
    *,
    force: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> Runtime:
    """Create the runtime ``name`` (a built-in recipe, or ``requirements``), or return it
    when it already exists with the same requirements (``force``: re-create it).

    Raises :class:`RuntimeEnvError` when the install fails (``.network`` says whether the
    index could not be reached) or its worker does not answer.
    """
    _check_name(name)
    reqs = _requirements(name, requirements)
    say = on_progress or (lambda _msg: None)
    root = runtimes_dir() / name
    with _locked(root):
        if root.exists() and not force:
            existing = Runtime.read(root)
            if existing.requirements == reqs:
                return existing
            raise UsageError(
                f"runtime {name} exists with {list(existing.requirements)}; pass --force to "
                f"re-create it with {list(reqs)}",
                option="--force",
            )
        try:
            stage = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{name}-", dir=root.parent))
        except OSError as exc:
            raise RuntimeEnvError(
                f"runtime {name}: cannot create {root.parent}: {os_error_text(exc)}", runtime=name
            ) from exc
        try:
            started = time.monotonic()
            say(f"creating runtime {name}: {' '.join(reqs)} (network install)")
            log_file = stage / "install.log"
            installer = _install(stage / "venv", reqs, log_file, name)
            say(f"runtime {name}: installed with {installer} in {time.monotonic() - started:.0f} s")
            site = _site_of(stage / "venv" / "bin" / "python", name)
            rel = os.path.relpath(site, stage)
            record = {
                "name": name,
                "requirements": list(reqs),
                "installer": installer,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "site_packages": rel,
                "info": {},
            }
            atomic_write_text(stage / "runtime.json", json.dumps(record, indent=2))
            sync_edgeort(stage, stage / rel)
            info = _ask_info(stage, name)
            record.update(info=info)
            atomic_write_text(stage / "runtime.json", json.dumps(record, indent=2))
            if root.exists():
                shutil.rmtree(root)
            stage.rename(root)
            _fix_venv_paths(root, stage)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    say(f"runtime {name}: {info.get('ort_build')} {info.get('ort_build_version')}, EPs "
        f"{', '.join(info.get('providers', []))}")  # fmt: skip
    return Runtime.read(root)


def _fix_venv_paths(root: Path, old: Path) -> None:
    """Point the venv's text files (pyvenv.cfg, activate scripts) at its final place."""
    for path in [root / "venv" / "pyvenv.cfg", *(root / "venv" / "bin").glob("activate*")]:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = path.read_text("utf-8")
            if str(old) in text:
                path.write_text(text.replace(str(old), str(root)), "utf-8")


def _ask_info(root: Path, name: str) -> dict[str, Any]:
    from edgeort.runtimes.client import Worker

    python = root / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    with Worker(python, name=name, timeout=300) as worker:
        return worker.call({"job": "info"})


# -- finding, checking, removing -------------------------------------------------------


def get(name: str) -> Runtime:
    """The created runtime ``name``; :class:`RuntimeEnvError` naming how to create it."""
    _check_name(name)
    root = runtimes_dir() / name
    if not (root / "runtime.json").is_file():
        hint = (
            f"edgeort runtimes add {name}"
            if name in BUILTIN_RECIPES
            else f"edgeort runtimes add {name} -r REQUIREMENT..."
        )
        raise RuntimeEnvError(f"no runtime {name!r} in {runtimes_dir()}: create it with {hint}")
    return Runtime.read(root)


def list_runtimes() -> list[Runtime]:
    """Every created runtime, by name."""
    base = runtimes_dir()
    if not base.is_dir():
        return []
    return [
        Runtime.read(p)
        for p in sorted(base.iterdir())
        if p.is_dir() and not p.name.startswith(".") and (p / "runtime.json").is_file()
    ]


def health(runtime: Runtime, *, timeout: float = 180.0) -> dict[str, Any]:
    """Start the runtime's worker and ask for its info: ``{"ok": True, "info": {...}}``
    or ``{"ok": False, "error": "..."}``."""
    from edgeort.errors import EdgeortError

    try:
        with runtime.worker(timeout=timeout) as worker:
            return {"ok": True, "info": worker.call({"job": "info"})}
    except EdgeortError as exc:
        return {"ok": False, "error": str(exc)}


def remove(name: str) -> Path:
    """Delete the runtime ``name``; returns the directory removed."""
    runtime = get(name)
    with _locked(runtime.root):
        try:
            shutil.rmtree(runtime.root)
        except OSError as exc:
            raise RuntimeEnvError(
                f"runtime {name}: cannot remove {runtime.root}: {os_error_text(exc)}",
                runtime=name,
            ) from exc
    return runtime.root
