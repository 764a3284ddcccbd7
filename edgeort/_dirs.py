"""Where edgeort keeps its cache and user config.

``EDGEORT_CACHE_DIR`` / ``EDGEORT_CONFIG_DIR`` override the platformdirs defaults
(tests and read-only devices use them).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "config_dir"]


def cache_dir() -> Path:
    env = os.environ.get("EDGEORT_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("edgeort"))


def config_dir() -> Path:
    env = os.environ.get("EDGEORT_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir("edgeort"))
