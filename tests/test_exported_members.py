"""The public API is pinned: adding or removing a name is a deliberate change here."""

from __future__ import annotations

import edgeort

EXPECTED = [
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


def test_all_is_sorted_and_pinned() -> None:
    assert edgeort.__all__ == sorted(edgeort.__all__)
    assert edgeort.__all__ == EXPECTED


def test_every_exported_name_resolves() -> None:
    for name in edgeort.__all__:
        assert getattr(edgeort, name) is not None, name
    assert callable(edgeort.probe) and callable(edgeort.load) and callable(edgeort.package)
