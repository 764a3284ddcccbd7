"""edgeort: take a trained ONNX model to edge devices and run it well there.

Importing edgeort is light: it loads neither ``onnx`` nor ``click``. The build side
(:func:`package`) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeort.errors import (
    BundleError,
    CacheError,
    DataError,
    EdgeortError,
    FarmError,
    InputError,
    IntegrityError,
    ModelError,
    NoVariantError,
    PackageError,
    ProfileError,
    ProviderError,
    RuntimeEnvError,
    SignatureError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "CacheError",
    "DataError",
    "DeviceInfo",
    "EdgeortError",
    "FarmError",
    "InputError",
    "IntegrityError",
    "Model",
    "ModelError",
    "NoVariantError",
    "PackageError",
    "Profile",
    "ProfileError",
    "ProviderError",
    "RuntimeEnvError",
    "SignatureError",
    "UsageError",
    "__version__",
    "load",
    "load_profiles",
    "open_bundle",
    "package",
    "probe",
    "rank",
]

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "DeviceInfo": "edgeort.hardware.device",
    "Profile": "edgeort.profiles",
    "load_profiles": "edgeort.profiles",
    "probe": "edgeort.hardware",
    "rank": "edgeort.profiles.match",
    "open_bundle": "edgeort.bundle",
    "load": "edgeort.runtime",
    "Model": "edgeort.runtime",
    "package": "edgeort.pack",
}

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import open_bundle
    from edgeort.hardware import probe
    from edgeort.hardware.device import DeviceInfo
    from edgeort.pack import package
    from edgeort.profiles import Profile, load_profiles
    from edgeort.profiles.match import rank
    from edgeort.runtime import Model, load


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeort' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
