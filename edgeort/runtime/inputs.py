"""Checking ``run()`` feeds against a recorded tensor signature, computed once per input.

:class:`InputCheck` holds what one input needs (dtype, rank, fixed dims) so the check per
run is a few attribute compares. No silent casts: an ndarray must have the recorded
dtype; Python lists and scalars (which carry no dtype of their own) are converted to it
when that is a same-kind cast (ints to an int or float input, floats to a float input;
never floats to ints, never ndarrays of another dtype).
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

__all__ = ["InputCheck", "check_shared_dims", "shape_text", "shared_dims"]

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
    frozen: np.ndarray | None = None  # the only value this variant takes (--freeze)

    @classmethod
    def from_spec(cls, spec: TensorSpec, frozen: Any = None) -> InputCheck:
        """``frozen``: the variant's ``frozen_inputs`` record of this input, if any."""
        dtype = None if spec.dtype in ("string", "str", "object") else np.dtype(spec.dtype)
        shape = None if spec.shape is None else tuple(spec.shape)
        rank = None if shape is None else len(shape)
        fixed = tuple((i, d) for i, d in enumerate(shape or ()) if isinstance(d, int) and d >= 0)
        value = None
        if isinstance(frozen, dict) and "value" in frozen:
            value = np.asarray(frozen["value"], dtype=frozen.get("dtype") or dtype)
        return cls(spec.name, dtype, rank, fixed, f"{spec.dtype}{shape_text(shape)}", value)

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
        if self.frozen is not None and not np.array_equal(arr, self.frozen):
            got = str(arr.tolist()) if arr.size < 9 else _got(arr)
            raise InputError(
                f"input {self.name!r}: this variant was packaged with the input frozen to "
                f"{self.frozen.tolist()} (--freeze), got {got}; feed that value, or load a "
                "variant packaged without --freeze",
                input_name=self.name,
                expected=str(self.frozen.tolist()),
                got=got,
            )
        return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _got(arr: np.ndarray) -> str:
    return f"{arr.dtype}{shape_text(arr.shape)}"


SharedDims = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


def shared_dims(specs: Sequence[TensorSpec]) -> SharedDims:
    """Named dynamic dims (e.g. ``batch``) that two or more inputs share, with every
    (input, axis) holding them: their sizes must agree in one ``run()``."""
    uses: dict[str, list[tuple[str, int]]] = {}
    for spec in specs:
        for axis, dim in enumerate(spec.shape or ()):
            if isinstance(dim, str) and dim:
                uses.setdefault(dim, []).append((spec.name, axis))
    return tuple((dim, tuple(where)) for dim, where in uses.items() if len(where) > 1)


def check_shared_dims(shared: SharedDims, feeds: dict[str, np.ndarray]) -> None:
    """An :class:`InputError` naming both inputs when a shared dim differs between them."""
    for dim, where in shared:
        first_name, first_axis = where[0]
        size = feeds[first_name].shape[first_axis]
        for name, axis in where[1:]:
            got = feeds[name].shape[axis]
            if got != size:
                raise InputError(
                    f"input {name!r}: dim {axis} ({dim!r}) is {got}, but input {first_name!r} "
                    f"has {dim!r} = {size} (dim {first_axis}): inputs that share {dim!r} "
                    "must have the same size there",
                    input_name=name,
                    expected=f"{dim}={size}",
                    got=f"{dim}={got}",
                )
