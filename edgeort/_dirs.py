"""Where edgeort keeps its cache and user config.

``EDGEORT_CACHE_DIR`` / ``EDGEORT_CONFIG_DIR`` override the platformdirs defaults
(tests and read-only devices use them).

On plain Linux the default is the XDG rule platformdirs applies there (``$XDG_CACHE_HOME``
or ``~/.cache``, ``$XDG_CONFIG_HOME`` or ``~/.config``, then ``edgeort``), worked out here
so that a cold ``edgeort.load()`` does not import platformdirs (which imports tempfile,
shutil, random, bz2 and lzma: about 5 ms). Every other case -- another OS, Android, a
relative XDG variable, no absolute ``HOME`` -- asks platformdirs itself, and
``tests/test_dirs.py`` checks that both give the same answer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["builtin_profile_dir", "cache_dir", "config_dir"]

APP = "edgeort"


def _plain_linux(xdg_var: str, default: str) -> str | None:
    """platformdirs' user directory on plain Linux, or None where its other rules apply."""
    env = os.environ
    if sys.platform != "linux" or hasattr(sys, "getandroidapilevel"):
        return None
    if "ANDROID_DATA" in env or "ANDROID_ROOT" in env:
        return None  # possibly an Android app: platformdirs decides
    xdg = env.get(xdg_var, "")
    if xdg.startswith("/"):
        return os.path.join(xdg, APP)
    if xdg.strip():
        return None  # a relative XDG path: platformdirs versions differ on it
    home = env.get("HOME", "")
    if not home.startswith("/"):
        return None  # no usable HOME: platformdirs falls back to the password database
    return os.path.join(home.rstrip("/") + "/" + default, APP)


def _user_dir(env: str, xdg: str, default: str, kind: str) -> Path:
    """``$env``, else the XDG dir on plain Linux, else platformdirs' ``user_<kind>_dir``."""
    given = os.environ.get(env)
    if given:
        return Path(given)
    fast = _plain_linux(xdg, default)
    if fast is not None:
        return Path(fast)
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP))


def cache_dir() -> Path:
    return _user_dir("EDGEORT_CACHE_DIR", "XDG_CACHE_HOME", ".cache", "cache")


def config_dir() -> Path:
    return _user_dir("EDGEORT_CONFIG_DIR", "XDG_CONFIG_HOME", ".config", "config")


def builtin_profile_dir() -> Path:
    """Where the built-in profiles are: ``edgeort/_profiles`` in a wheel, else the
    repository's ``profiles/`` (a checkout or editable install)."""
    here = Path(__file__).resolve().parent  # edgeort/
    wheel = here / "_profiles"
    return wheel if wheel.is_dir() else here.parent / "profiles"
