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

__all__ = ["cache_dir", "config_dir"]

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


def cache_dir() -> Path:
    env = os.environ.get("EDGEORT_CACHE_DIR")
    if env:
        return Path(env)
    fast = _plain_linux("XDG_CACHE_HOME", ".cache")
    if fast is not None:
        return Path(fast)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP))


def config_dir() -> Path:
    env = os.environ.get("EDGEORT_CONFIG_DIR")
    if env:
        return Path(env)
    fast = _plain_linux("XDG_CONFIG_HOME", ".config")
    if fast is not None:
        return Path(fast)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))
