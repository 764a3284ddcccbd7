"""The load-plan cache: what :func:`edgeort.load` decided for a bundle on this host, kept
so that the next process opens the same session without probing or ranking again.

A fresh process that loads a small model spends most of its time importing and deciding,
not in ONNX Runtime: the probe, the profiles and the ranking are a few dozen dataclasses
and modules. What they decide depends only on things that can be stamped cheaply, so
``load()`` keeps its decision -- the variant, the :class:`~edgeort.hardware.ep.SessionPlan`
(threads, levels, config entries, provider options) and the per-variant reasons -- in
``<cache>/plans/<manifest sha256>-<arguments>.json``, with the **key** it was made under:

- the bundle: the sha256 of its manifest and component files (which list every file's
  sha256, checked by :func:`edgeort.bundle.open_bundle` before the plan is read);
- the host: ``os.uname()``, the Linux boot id (a reboot, a new kernel or moved hardware
  makes a new one), the CPU count, and no battery (spinning is switched off on battery,
  so a host with one always takes the full path);
- the software: edgeort's, Python's and onnxruntime's versions and files, the EPs the
  onnxruntime build lists (less the plugin EPs registered in this process), a stamp of
  every ``sys.path`` directory but the script's own (installing or removing a plugin EP
  package changes it), and every ``EDGEORT_*`` variable;
- the profiles and tuning: a stamp of every built-in and user profile file and of the
  tune cache directory;
- the arguments: ``strict`` and ``threads`` (a ``profile=``, ``providers=`` or
  ``device=`` call, or a ``strict`` that is not a bool, always takes the full path).

Any difference, a missing or unreadable file, a host without a boot id, or
``EDGEORT_NO_PLAN_CACHE=1`` means the full path; so does a session the plan cannot
open (the plan is then replaced by a fresh decision). A decision that got past a variant
which failed to open is not kept: that variant may open next time (a GPU out of memory, a
device busy), and the full path tries it again on every load. Not in the key: the
devices a plugin EP lists (a driver loaded after boot) and edits to edgeort's sources in
an editable install (docs/architecture.md). The plan cache lives in the same
private (0700, owned by the user) cache directory as the verification and tune caches,
and a plan file owned by anyone else is ignored: a plan carries provider options.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

import onnxruntime as ort

from edgeort._dirs import builtin_profile_dir, cache_dir, config_dir
from edgeort._log import get_logger
from edgeort.bundle._cache import stat_stamp

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import Bundle
    from edgeort.hardware.ep import SessionPlan

__all__ = ["LoadPlan", "plan_key", "plan_path", "read_plan", "write_plan"]

log = get_logger(__name__)

SCHEMA = 1
BOOT_ID = "/proc/sys/kernel/random/boot_id"


class LoadPlan(TypedDict):
    """A kept decision: the variant to open and how, and what load() logged and reported."""

    variant: str
    profile: str
    session: SessionPlan
    reasons: dict[str, str]
    log: list[tuple[int, str]]  # (level, message) of the skipped variants, replayed


def _stamp(path: str | Path) -> dict[str, int] | None:
    """The verification cache's stamp of ``path`` (changes whenever its bytes or, for a
    directory, its entries can have); None when it cannot be stat'ed."""
    try:
        return stat_stamp(os.stat(path))
    except OSError:
        return None


def _files(directory: Path, suffix: str) -> list[Any] | None:
    """Stamps of ``directory`` and its ``*suffix`` files; None when it cannot be listed
    (the full path then says why, every time)."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(suffix))
    except FileNotFoundError:
        return [str(directory)]
    except OSError:
        return None
    return [str(directory), _stamp(directory), [[n, _stamp(directory / n)] for n in names]]


def _host() -> list[Any] | None:
    """This boot of this machine; None where it cannot be told apart cheaply."""
    try:
        with open(BOOT_ID, "rb") as fh:
            boot = fh.read().strip().decode("ascii", "replace")
    except OSError:
        return None
    from edgeort.hardware._procfs import battery_absent

    if not boot or not battery_absent():
        return None
    return [list(os.uname()), boot, os.cpu_count()]


def _build_providers() -> list[str]:
    """The EPs the onnxruntime build lists, less the plugin EPs edgeort registered in this
    process (onnxruntime lists those too once registered: a process that loads a bundle
    twice, or probes first, would otherwise never match the key another process kept)."""
    names = list(ort.get_available_providers())
    plugins = sys.modules.get("edgeort.hardware.plugins")
    if plugins is None:  # nothing registered by edgeort yet
        return names
    registered = {p.ep_name for p in plugins.discover_plugins() if p.registered}
    return [n for n in names if n not in registered]


def plan_key(bundle: Bundle, *, strict: bool, threads: int | None) -> dict[str, Any] | None:
    """What a plan for ``bundle`` is valid under (see the module docstring); None when
    this host or bundle takes the full path every time."""
    if os.environ.get("EDGEORT_NO_PLAN_CACHE", "") not in ("", "0"):
        return None
    if not bundle.manifest_sha256:
        return None
    host = _host()
    if host is None:
        return None
    from edgeort import __version__

    tune = cache_dir() / "tune"
    profiles = [
        _files(builtin_profile_dir(), ".toml"),
        _files(config_dir() / "profiles", ".toml"),
    ]
    if None in profiles:
        return None
    return {
        "schema": SCHEMA,
        "bundle": [str(bundle.root), bundle.manifest_sha256, bundle.component_sha256],
        "arguments": [strict, threads],
        "host": host,
        "edgeort": [__version__, __file__],
        "python": [sys.version, sys.executable],
        "onnxruntime": [ort.__version__, ort.__file__, _stamp(ort.__file__ or "")],
        "providers": _build_providers(),
        "sys.path": [[p, _stamp(p)] for p in sys.path[1:] if p],  # [0]: the script's dir
        "env": sorted((k, v) for k, v in os.environ.items() if k.startswith("EDGEORT_")),
        "profiles": profiles,
        "tune": [str(tune), _stamp(tune)],
    }


def plan_path(bundle: Bundle, *, strict: bool, threads: int | None) -> Path:
    args = f"s{int(strict)}-t{'auto' if threads is None else threads}"
    return cache_dir() / "plans" / f"{bundle.manifest_sha256[:32]}-{args}.json"


def read_plan(path: Path, key: dict[str, Any]) -> LoadPlan | None:
    """The plan kept at ``path`` if it was made under ``key`` (else None, silently: a
    plan is only a shortcut)."""
    try:
        with open(path, "rb") as fh:
            if hasattr(os, "getuid") and os.fstat(fh.fileno()).st_uid != os.getuid():
                log.warning("ignoring load plan %s: owned by another user", path)
                return None
            data = json.loads(fh.read())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("key") != json.loads(json.dumps(key)):
        return None
    return _checked(data.get("plan"))


_SESSION_FIELDS = {
    "graph_optimization_level": str,
    "execution_mode": str,
    "intra_op_threads": int,
    "inter_op_threads": int,
    "config": dict,
    "provider_options": dict,
    "strict": bool,
}


def _str_table(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _checked(plan: Any) -> LoadPlan | None:
    """``plan`` as :class:`LoadPlan` when it has exactly the shape :func:`write_plan`
    keeps, else None (the full path then decides: never a crash on a plan's contents)."""
    if not isinstance(plan, dict) or set(plan) != set(LoadPlan.__annotations__):
        return None
    session, log_lines = plan["session"], plan["log"]
    if not (
        isinstance(plan["variant"], str)
        and isinstance(plan["profile"], str)
        and _str_table(plan["reasons"])
        and isinstance(log_lines, list)
        and all(
            isinstance(line, list)
            and len(line) == 2
            and type(line[0]) is int
            and isinstance(line[1], str)
            for line in log_lines
        )
        and isinstance(session, dict)
        and set(session) == set(_SESSION_FIELDS)
        and all(type(session[k]) is t for k, t in _SESSION_FIELDS.items())
        and _str_table(session["config"])
        and _str_table(session["provider_options"])
    ):
        return None
    return LoadPlan(
        variant=plan["variant"],
        profile=plan["profile"],
        session=cast("SessionPlan", session),
        reasons=plan["reasons"],
        log=[(level, msg) for level, msg in log_lines],
    )


def write_plan(path: Path, key: dict[str, Any], plan: LoadPlan) -> None:
    """Keep ``plan`` (atomically); a cache that cannot be written is logged and ignored."""
    from edgeort import _fs
    from edgeort.bundle._cache import private_dir

    why = private_dir(path.parent)
    if why is None:
        try:
            text = json.dumps({"key": key, "plan": plan}, sort_keys=True)
            _fs.atomic_write_text(path, text)
            return
        except (OSError, TypeError, ValueError) as exc:
            why = str(exc)
    log.info("load plan not kept: %s", why)
