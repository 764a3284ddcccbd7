"""Model inputs edgeort makes up or reads: random feeds from a signature, ``.npy`` files.

Every ``.npy``/``.npz`` edgeort reads (``--input NAME=FILE.npy``, :func:`load_feeds`, the
packager's calibration/validation data) goes through :func:`read_npy` /
:func:`read_arrays`: never a pickle, and a :class:`DataError` that names the file and
the array.

One rule for every generated input (``edgeort run`` without ``--input``, the measure
commands, the packager's synthetic calibration data), :func:`random_array`:

* floating point: standard normal, from a seeded generator;
* bool: ``True``;
* integer named like a mask (``mask`` in the name): ones;
* other integers: uniform in ``0 .. vocab-1`` when the caller knows the range (the
  packager reads embedding-table sizes off the graph), except token-type / segment ids;
  otherwise zeros -- 0 is a valid index for every table;
* anything else (strings): not generated; the caller asks for a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeort.errors import DataError, UsageError

__all__ = [
    "ORT_DTYPES",
    "can_generate",
    "generate_feeds",
    "load_feeds",
    "parse_assignments",
    "random_array",
    "random_feeds",
    "read_arrays",
    "read_npy",
    "resolve_shape",
]

ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(bool)": np.bool_,
}


def parse_assignments(items: Sequence[str], *, option: str) -> dict[str, str]:
    """``["a=1", "b=x.npy"]`` -> ``{"a": "1", "b": "x.npy"}``; UsageError names the option."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{option} {item!r}: expected NAME=VALUE", option=option)
        out[name] = value
    return out


def resolve_shape(
    name: str, shape: Sequence[Any], dims: Mapping[str, int], *, default_dim: int = 1
) -> tuple[int, ...]:
    """Concrete dims for one input: fixed dims as they are, named dims from ``dims``
    (keyed by dim name or by ``input:axis``), other dynamic dims ``default_dim``."""
    out = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, int) and dim >= 0:
            out.append(dim)
        elif isinstance(dim, str) and dim in dims:
            out.append(int(dims[dim]))
        else:
            out.append(int(dims.get(f"{name}:{axis}", default_dim)))
    return tuple(out)


def dynamic_axes(arg: Any) -> list[tuple[int, str]]:
    """``(axis, key)`` of each dynamic dim of an input (an object with ``.name`` and
    ``.shape``): the key a ``--dim`` sets it by, its name, or ``input:axis`` if unnamed."""
    return [
        (axis, dim if isinstance(dim, str) and dim else f"{arg.name}:{axis}")
        for axis, dim in enumerate(arg.shape or ())
        if not (isinstance(dim, int) and dim >= 0)
    ]


def check_dim_names(inputs: Sequence[Any], dims: Mapping[str, int]) -> None:
    """Every ``--dim`` key names a dynamic dim of ``inputs`` (objects with ``.name`` and
    ``.shape``: ORT ``NodeArg`` s or ``TensorSpec`` s, of every target measured), by its
    name or as ``input:axis``: a typo is a :class:`UsageError` with the closest name."""
    import difflib

    known: list[str] = []
    for arg in inputs:
        for axis, dim in enumerate(arg.shape or ()):
            if not (isinstance(dim, int) and dim >= 0):
                if isinstance(dim, str) and dim and dim not in known:
                    known.append(dim)
                known.append(f"{arg.name}:{axis}")
    for key in dims:
        if key not in known:
            close = difflib.get_close_matches(key, known, 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(known) if known else "none: every dim is fixed"
            raise UsageError(
                f"--dim {key}=...: the model has no dynamic dimension {key!r}{hint} "
                f"(its dynamic dims: {listed})",
                option="--dim",
            )


def can_generate(dtype: Any) -> bool:
    """Whether :func:`random_array` makes inputs of ``dtype`` (numbers and bools)."""
    return np.dtype(dtype).kind in "fbiu"


def random_array(
    name: str,
    dtype: Any,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    *,
    vocab: int | None = None,
) -> np.ndarray:
    """One generated input by the module's rule (see the module docstring)."""
    dt = np.dtype(dtype)
    lowered = name.lower()
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    if dt.kind == "b":
        return np.ones(shape, dtype=dt)
    if dt.kind not in "iu":
        raise DataError(f"cannot generate input {name!r} of dtype {dt}: give it as a file")
    if "mask" in lowered:
        return np.ones(shape, dtype=dt)
    if vocab and "type" not in lowered and "segment" not in lowered:
        high = max(1, min(int(vocab), int(np.iinfo(dt).max)))
        return rng.integers(0, high, size=shape).astype(dt)
    return np.zeros(shape, dtype=dt)  # ids/indices: 0 is valid for every table


def random_feeds(
    specs: Sequence[Any], *, dims: Mapping[str, int] | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Feeds for tensor signatures (``.name``, numpy ``.dtype`` name, ``.shape``): named
    dims from ``dims``, other dynamic dims 1."""
    rng = np.random.default_rng(seed)
    return {
        s.name: random_array(s.name, s.dtype, resolve_shape(s.name, s.shape, dims or {}), rng)
        for s in specs
    }


def generate_feeds(
    inputs: Sequence[Any], *, dims: Mapping[str, int] | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Feeds for ORT ``NodeArg``-like inputs (``.name``, ``.type``, ``.shape``), by the
    module's rule: floats standard normal (seeded), integer ids zeros, masks ones."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for arg in inputs:
        dtype = ORT_DTYPES.get(arg.type)
        if dtype is None:
            raise DataError(
                f"input {arg.name!r} has type {arg.type}; edgeort generates only "
                f"{', '.join(sorted(ORT_DTYPES))} (pass --input {arg.name}=file.npy)"
            )
        shape = resolve_shape(arg.name, arg.shape, dims or {})
        feeds[arg.name] = random_array(arg.name, dtype, shape, rng)
    return feeds


def read_npy(path: str | Path, *, what: str) -> np.ndarray:
    """One array from an ``.npy`` file (no pickles). ``what`` names the array in the
    :class:`DataError` raised for a missing, unreadable or non-``.npy`` file (e.g.
    ``"input 'x'"``)."""
    path = Path(path)
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read {what} as .npy: {exc}", path=path) from None
    if not isinstance(value, np.ndarray):
        value.close()
        raise DataError(f"{path}: {what}: an .npz archive, expected a single .npy array", path=path)
    return value


def read_arrays(path: str | Path, *, expected: str) -> dict[str, np.ndarray]:
    """Named arrays from an ``.npz`` file or a directory of ``<name>.npy`` files (no
    pickles). ``expected`` describes the format in the :class:`DataError` raised for a
    missing path, an empty directory or a file that is not an ``.npz``."""
    import zipfile

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise DataError(
                f"{path}: no .npy files in the directory; expected {expected}", path=path
            )
        return {f.stem: read_npy(f, what=f"array {f.stem!r}") for f in files}
    if not path.is_file():
        raise DataError(f"{path}: data file not found; expected {expected}", path=path)
    try:
        with open(path, "rb") as fh:
            npz = np.load(fh, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: a single array, expected {expected}", path=path)
            with npz:
                out = {}
                for name in npz.files:
                    try:
                        out[name] = npz[name]
                    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
                        raise DataError(
                            f"{path}: cannot read array {name!r}: {exc}", path=path
                        ) from None
                return out
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})", path=path) from None


def load_feeds(files: Mapping[str, str | Path], inputs: Sequence[Any]) -> dict[str, np.ndarray]:
    """Read ``name -> file.npy``; checks names, dtypes and fixed dims against ``inputs``."""
    by_name = {arg.name: arg for arg in inputs}
    feeds = {}
    for name, file in files.items():
        if name not in by_name:
            raise DataError(
                f"--input {name}: the model has no input {name!r} "
                f"(inputs: {', '.join(sorted(by_name))})",
                path=file,
            )
        array = read_npy(file, what=f"input {name!r}")
        arg = by_name[name]
        want = ORT_DTYPES.get(arg.type)
        if want is not None and array.dtype != want:
            raise DataError(
                f"{file}: input {name!r} is {array.dtype}, the model expects {np.dtype(want)}",
                path=file,
            )
        _check_dims(name, file, array.shape, arg.shape)
        feeds[name] = array
    return feeds


def _check_dims(name: str, file: str | Path, got: tuple[int, ...], want: Sequence[Any]) -> None:
    if len(got) != len(want) or any(
        isinstance(w, int) and w >= 0 and g != w for g, w in zip(got, want, strict=False)
    ):
        raise DataError(
            f"{file}: input {name!r} has shape {list(got)}, the model expects {list(want)}",
            path=file,
        )
