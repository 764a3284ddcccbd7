"""One installed plugin EP distribution as :mod:`edgeort.hardware.plugins` found it
(before registration). Imported only when plugins are looked up, which a bundle with
CPU variants alone never does."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["_Spec"]


@dataclass(frozen=True, slots=True)
class _Spec:
    """One installed plugin distribution, as found (before registration)."""

    package: str
    module: str
    version: str | None
    ep_names: tuple[str, ...]
    library_path: str | None
    error: str | None
