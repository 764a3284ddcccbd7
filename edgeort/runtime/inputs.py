"""Checking ``run()`` feeds against a recorded tensor signature, computed once per input.

:class:`InputCheck` holds what one input needs (dtype, rank, fixed dims) so the check per
run is a few attribute compares. No silent casts: an ndarray must have the recorded
dtype; Python lists and scalars are converted to it when that is a same-kind cast.
Every mismatch is an :class:`~edgeort.errors.InputError` naming the input, the
expected and the got.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeort.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import TensorSpec

__all__ = ["InputCheck", "shape_text"]

_PY_SCALARS = (bool, int, float, complex, str, bytes)
_STRING_KINDS = frozenset("USO")


def shape_text(shape: Sequence[int | str | None] | None) -> str:
    if shape is None:
        return "any shape"
    dims = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({dims})"


@dataclass(frozen=True, slots=True)
class InputCheck:
    """Everything ``run()`` needs to check one input, computed once at load."""

    name: str
    dtype: np.dtype[Any] | None  # None: string tensor (any of U, S, O kinds)
    rank: int | None  # None: rank unknown, not checked
    fixed: tuple[tuple[int, int], ...]  # (axis, size) of every fixed dim
    expected: str

    @classmethod
    def from_spec(cls, spec: TensorSpec) -> InputCheck:
        dtype = None if spec.dtype in ("string", "str", "object") else np.dtype(spec.dtype)
        shape = None if spec.shape is None else tuple(spec.shape)
        rank = None if shape is None else len(shape)
        fixed = tuple((i, d) for i, d in enumerate(shape or ()) if isinstance(d, int) and d >= 0)
        return cls(spec.name, dtype, rank, fixed, f"{spec.dtype}{shape_text(shape)}")

    def fail(self, what: str, got: str) -> InputError:
        return InputError(
            f"input {self.name!r}: {what}: expected {self.expected}, got {got}",
            input_name=self.name,
            expected=self.expected,
            got=got,
        )

    def convert(self, value: Any) -> np.ndarray:
        """A non-ndarray feed -> ndarray; lists and scalars take the expected dtype."""
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise self.fail(
                "not convertible to an array", f"{type(value).__name__} ({exc})"
            ) from None
        if not isinstance(value, (list, tuple, *_PY_SCALARS)) or self.dtype is None:
            return arr
        if arr.dtype.kind in _STRING_KINDS or arr.dtype == object:
            return arr
        if not np.can_cast(arr.dtype, self.dtype, casting="same_kind"):
            raise self.fail("wrong dtype", f"a Python {type(value).__name__} of {arr.dtype}")
        return arr.astype(self.dtype)

    def check(self, value: Any) -> np.ndarray:
        arr = value if type(value) is np.ndarray else self.convert(value)
        if self.dtype is None:
            if arr.dtype.kind not in _STRING_KINDS:
                raise self.fail("wrong dtype", f"{arr.dtype}{shape_text(arr.shape)}")
        elif arr.dtype != self.dtype:
            raise self.fail("wrong dtype (edgeort never casts arrays)", _got(arr))
        shape = arr.shape
        if self.rank is not None and len(shape) != self.rank:
            raise self.fail(f"wrong rank {len(shape)}", _got(arr))
        for axis, size in self.fixed:
            if shape[axis] != size:
                raise self.fail(f"wrong size {shape[axis]} of dim {axis}", _got(arr))
        return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _got(arr: np.ndarray) -> str:
    return f"{arr.dtype}{shape_text(arr.shape)}"
