"""Calibration and validation data: load, check against the model, or synthesize.

A data file is an ``.npz`` with one array per model input name (first axis = samples),
or a directory of ``<input name>.npy`` files. An optional ``__labels__`` array (one
integer class index per sample) is the ground truth for top-1 accuracy. Every mismatch
(names, shapes, dtypes, sample counts) is one :class:`DataError` naming the file, the
input, what was expected and what was found.

Each sample is fed with a batch dimension: an array ``[N, *shape]`` whose rank equals
the input's rank gives ``arr[i:i+1]`` (the samples axis is the batch axis); an array of
rank one more gives ``arr[i]``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader

from edgeort.bundle import TensorSpec
from edgeort.errors import DataError
from edgeort.feeds import random_array

__all__ = ["LABELS", "Dataset", "DatasetReader", "load_data", "synthetic_data", "vocab_sizes"]

LABELS = "__labels__"
_NPZ_FORMAT = (
    "an .npz with one array per model input name (first axis = samples), or a "
    "directory of <input name>.npy files"
)


@dataclass(frozen=True, slots=True)
class Dataset:
    """Samples for every model input. ``source`` is the file, or "synthetic"."""

    arrays: Mapping[str, np.ndarray]
    stacked: Mapping[str, bool]  # True: arrays are [N, *input shape] (rank + 1)
    samples: int
    source: str
    synthetic: bool = False
    labels: np.ndarray | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def sample(self, index: int) -> dict[str, np.ndarray]:
        return {
            name: (arr[index] if self.stacked[name] else arr[index : index + 1])
            for name, arr in self.arrays.items()
        }

    def feeds(self, limit: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        count = self.samples if limit is None else min(limit, self.samples)
        for i in range(count):
            yield self.sample(i)

    def head(self, count: int) -> Dataset:
        """The first ``count`` samples (labels follow)."""
        n = min(count, self.samples)
        labels = None if self.labels is None else self.labels[:n]
        arrays = {k: v[:n] for k, v in self.arrays.items()}
        return Dataset(arrays, self.stacked, n, self.source, self.synthetic, labels, self.notes)


class DatasetReader(CalibrationDataReader):  # type: ignore[misc]
    """An onnxruntime ``CalibrationDataReader`` over a :class:`Dataset`."""

    def __init__(self, data: Dataset, limit: int | None = None) -> None:
        self._data = data
        self._limit = limit
        self._it = data.feeds(limit)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = self._data.feeds(self._limit)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise DataError(f"{path}: no .npy files in the directory; expected {_NPZ_FORMAT}")
        try:
            return {f.stem: np.load(f, allow_pickle=False) for f in files}
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read .npy files: {exc}", path=path) from None
    if not path.is_file():
        raise DataError(f"{path}: data file not found; expected {_NPZ_FORMAT}", path=path)
    try:
        with open(path, "rb") as fh:
            npz = np.load(fh, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: a single array, expected {_NPZ_FORMAT}", path=path)
            with npz:
                return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})", path=path) from None


def _fmt(shape: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _check_input(path: Path, info: TensorSpec, arr: np.ndarray) -> bool:
    """Check one array against one input; returns whether it is stacked (rank + 1)."""
    if arr.dtype.name != info.dtype:
        raise DataError(
            f"{path}: input {info.name!r}: dtype {arr.dtype.name}, expected {info.dtype} "
            f"(convert with arr.astype('{info.dtype}'))",
            path=path,
        )
    rank = len(info.shape)
    if arr.ndim == rank + 1:
        stacked, dims = True, arr.shape[1:]
    elif arr.ndim == rank and rank > 0:
        stacked, dims = False, (1, *arr.shape[1:])
    else:
        raise DataError(
            f"{path}: input {info.name!r}: shape {list(arr.shape)}, expected [samples, "
            f"...] matching {_fmt(info.shape)} (rank {rank} or {rank + 1})",
            path=path,
        )
    for axis, (want, got) in enumerate(zip(info.shape, dims, strict=True)):
        if isinstance(want, int) and want != got:
            hint = (
                " (one sample per model batch: give [samples, *input shape])" if axis == 0 else ""
            )
            raise DataError(
                f"{path}: input {info.name!r}: dimension {axis} is {got}, expected {want} "
                f"(model shape {_fmt(info.shape)}, data shape {list(arr.shape)}){hint}",
                path=path,
            )
    return stacked


def load_data(path: str | Path, inputs: Sequence[TensorSpec]) -> Dataset:
    """Read ``path`` and check it against the model ``inputs``."""
    path = Path(path)
    arrays = _read_arrays(path)
    labels = arrays.pop(LABELS, None)
    names = [i.name for i in inputs]
    missing = [n for n in names if n not in arrays]
    extra = sorted(set(arrays) - set(names))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"unknown array(s) {', '.join(map(repr, extra))}")
        raise DataError(
            f"{path}: {'; '.join(parts)}; the model's inputs are {names} (plus optional "
            f"{LABELS!r}); expected {_NPZ_FORMAT}, e.g. numpy.savez('data.npz', "
            f"**{{{', '.join(f'{n!r}: array' for n in names)}}})",
            path=path,
        )
    stacked = {i.name: _check_input(path, i, arrays[i.name]) for i in inputs}
    counts = {n: int(arrays[n].shape[0]) for n in names}
    if len(set(counts.values())) != 1:
        raise DataError(f"{path}: inputs have different sample counts {counts}", path=path)
    samples = next(iter(counts.values()))
    if samples == 0:
        raise DataError(f"{path}: no samples (first axis is 0)", path=path)
    if labels is not None:
        labels = _check_labels(path, labels, samples)
    return Dataset({n: arrays[n] for n in names}, stacked, samples, str(path), False, labels)


def _check_labels(path: Path, labels: np.ndarray, samples: int) -> np.ndarray:
    if labels.ndim != 1 or labels.shape[0] != samples or labels.dtype.kind not in "iu":
        raise DataError(
            f"{path}: {LABELS!r}: expected {samples} integer class indices (shape "
            f"[{samples}]), got dtype {labels.dtype.name} shape {list(labels.shape)}",
            path=path,
        )
    return labels.astype(np.int64)


def synthetic_data(
    inputs: Sequence[TensorSpec],
    *,
    samples: int = 8,
    seed: int = 0,
    vocab: Mapping[str, int] | None = None,
) -> Dataset:
    """Random samples by :func:`edgeort.feeds.random_array`'s rule: floats standard
    normal, masks ones, other integers ``0 .. vocab[name]-1`` when the embedding table
    size is known (``vocab``) else zeros, booleans True. Dynamic dims become 1 (batch)
    or 8 (others).
    """
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for info in inputs:
        dims = [d if isinstance(d, int) else (1 if i == 0 else 8) for i, d in enumerate(info.shape)]
        shape = (samples, *dims)
        arrays[info.name] = random_array(
            info.name, info.dtype, shape, rng, vocab=(vocab or {}).get(info.name)
        )
    stacked = {info.name: True for info in inputs}
    note = f"synthetic inputs ({samples} samples, seed {seed}): no data file was given"
    return Dataset(arrays, stacked, samples, "synthetic", True, None, (note,))


def vocab_sizes(model: onnx.ModelProto) -> dict[str, int]:
    """Integer graph inputs that index an embedding table (``Gather(table, input)``)
    mapped to that table's first dimension, so synthetic ids stay in range."""
    tables = {i.name: (tuple(i.dims) or (0,))[0] for i in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input}
    sizes: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) == 2:
            table, ids = node.input
            if ids in graph_inputs and tables.get(table):
                sizes[ids] = min(sizes.get(ids, tables[table]), int(tables[table]))
    return sizes
