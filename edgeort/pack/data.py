"""Calibration and validation data: load, check against the model, or synthesize.

A data file is an ``.npz`` with one array per model input name (first axis = samples),
or a directory of ``<input name>.npy`` files. An optional ``__labels__`` array (one
integer class index per sample) is the ground truth for top-1 accuracy. An optional
``__sequence__`` array (one integer per sample) splits the samples of a stateful model
into sequences: a new id starts a new sequence. Every mismatch
(names, shapes, dtypes, sample counts) is one :class:`DataError` naming the file, the
input, what was expected and what was found.

Each sample is fed with a batch dimension: an array ``[N, *shape]`` whose rank equals
the input's rank gives ``arr[i:i+1]`` (the samples axis is the batch axis); an array of
rank one more gives ``arr[i]``. A 0-d (scalar) input takes an array ``[N]``.

Optional inputs (graph inputs with an initializer as default) may be given or left
out. In a stateful model (:mod:`edgeort.pack.state`) the samples are consecutive steps:
a state input's array may be left out (zeros start each sequence); when given, it is the
state at the start of each sequence, and later steps get the previous step's state
output (:meth:`Dataset.feeds` with ``outputs``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader

from edgeort.bundle import TensorSpec
from edgeort.errors import DataError
from edgeort.feeds import random_array, resolve_shape

__all__ = [
    "LABELS",
    "SEQUENCE",
    "Dataset",
    "DatasetReader",
    "load_data",
    "synthetic_data",
    "vocab_sizes",
]

LABELS = "__labels__"
SEQUENCE = "__sequence__"
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
    state: tuple[tuple[str, str], ...] = ()  # (input, output) pairs fed back step to step
    sequence: np.ndarray | None = None  # sequence id per sample (None: one sequence)

    def sample(self, index: int) -> dict[str, np.ndarray]:
        # np.asarray: a 0-d input's sample is a numpy scalar, which onnxruntime refuses.
        return {
            name: np.asarray(arr[index] if self.stacked[name] else arr[index : index + 1])
            for name, arr in self.arrays.items()
        }

    def starts_sequence(self, index: int) -> bool:
        if index == 0:
            return True
        return self.sequence is not None and self.sequence[index] != self.sequence[index - 1]

    def feeds(self, limit: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Each sample's feed, independently (state inputs as stored)."""
        count = self.samples if limit is None else min(limit, self.samples)
        for i in range(count):
            yield self.sample(i)

    def head(self, count: int) -> Dataset:
        """The first ``count`` samples (labels follow)."""
        n = min(count, self.samples)
        labels = None if self.labels is None else self.labels[:n]
        arrays = {k: v[:n] for k, v in self.arrays.items()}
        seq = None if self.sequence is None else self.sequence[:n]
        return Dataset(
            arrays, self.stacked, n, self.source, self.synthetic, labels, self.notes,
            self.state, seq,
        )  # fmt: skip

    def with_arrays(self, arrays: Mapping[str, np.ndarray], *, stateless: bool) -> Dataset:
        """A copy with some arrays replaced (stacked: ``[N, *input shape]``); with
        ``stateless`` its samples are independent (no state pairs)."""
        merged = {**self.arrays, **arrays}
        stacked = {**self.stacked, **dict.fromkeys(arrays, True)}
        return Dataset(
            merged, stacked, self.samples, self.source, self.synthetic, self.labels,
            self.notes, () if stateless else self.state, self.sequence,
        )  # fmt: skip


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
    from edgeort.feeds import read_arrays

    return read_arrays(path, expected=_NPZ_FORMAT)


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


def load_data(
    path: str | Path,
    inputs: Sequence[TensorSpec],
    *,
    optional: Sequence[TensorSpec] = (),
    state: Sequence[tuple[str, str]] = (),
) -> Dataset:
    """Read ``path`` and check it against the model ``inputs``. ``optional``: inputs
    with a default (an initializer) that the file may give; ``state``: (input, output)
    pairs whose input the file may leave out (zeros start each sequence)."""
    path = Path(path)
    arrays = _read_arrays(path)
    labels = arrays.pop(LABELS, None)
    sequence = arrays.pop(SEQUENCE, None)
    state_inputs = {i for i, _ in state}
    names = [i.name for i in inputs]
    optional = [o for o in optional if o.name in arrays]
    missing = [n for n in names if n not in arrays and n not in state_inputs]
    extra = sorted(set(arrays) - set(names) - {o.name for o in optional})
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"unknown array(s) {', '.join(map(repr, extra))}")
        raise DataError(
            f"{path}: {'; '.join(parts)}; the model's inputs are {names} (plus optional "
            f"{LABELS!r}, {SEQUENCE!r}); expected {_NPZ_FORMAT}, e.g. numpy.savez('data.npz', "
            f"**{{{', '.join(f'{n!r}: array' for n in names)}}})",
            path=path,
        )
    given = [i for i in (*inputs, *optional) if i.name in arrays]
    stacked = {i.name: _check_input(path, i, arrays[i.name]) for i in given}
    counts = {i.name: int(arrays[i.name].shape[0]) for i in given}
    if len(set(counts.values())) > 1:
        raise DataError(f"{path}: inputs have different sample counts {counts}", path=path)
    if not counts:
        raise DataError(f"{path}: no input arrays; the model's inputs are {names}", path=path)
    samples = next(iter(counts.values()))
    if samples == 0:
        raise DataError(f"{path}: no samples (first axis is 0)", path=path)
    if labels is not None:
        labels = _check_ints(path, LABELS, "class indices", labels, samples)
    if sequence is not None:
        sequence = _check_ints(path, SEQUENCE, "sequence ids", sequence, samples)
    out = {i.name: arrays[i.name] for i in given}
    notes: list[str] = []
    for info in inputs:
        if info.name not in out:  # a state input left out: zeros
            dims = _resolve_dims(info, given, out, stacked)
            out[info.name] = np.zeros((samples, *dims), dtype=np.dtype(info.dtype))
            stacked[info.name] = True
            notes.append(f"state input {info.name!r}: zeros {dims} at each sequence start")
    return Dataset(
        out, stacked, samples, str(path), False, labels, tuple(notes), tuple(state), sequence
    )


def _resolve_dims(
    info: TensorSpec,
    given: Sequence[TensorSpec],
    arrays: Mapping[str, np.ndarray],
    stacked: Mapping[str, bool],
) -> list[int]:
    """Concrete dims for ``info``: a named dim takes its size in a given input that has
    the same name; other dynamic dims are 1."""
    sizes: dict[str, int] = {}
    for other in given:
        arr = arrays[other.name]
        dims = arr.shape[1:] if stacked[other.name] else (1, *arr.shape[1:])
        for want, got in zip(other.shape, dims, strict=False):
            if isinstance(want, str) and want:
                sizes.setdefault(want, int(got))
    return list(resolve_shape(info.name, info.shape, sizes))


def _check_ints(path: Path, key: str, what: str, arr: np.ndarray, samples: int) -> np.ndarray:
    """The ``key`` array (``__labels__``, ``__sequence__``): one integer per sample."""
    if arr.ndim != 1 or arr.shape[0] != samples or arr.dtype.kind not in "iu":
        raise DataError(
            f"{path}: {key!r}: expected {samples} integer {what} (shape "
            f"[{samples}]), got dtype {arr.dtype.name} shape {list(arr.shape)}",
            path=path,
        )
    return arr.astype(np.int64)


def synthetic_data(
    inputs: Sequence[TensorSpec],
    *,
    samples: int = 8,
    seed: int = 0,
    vocab: Mapping[str, int] | None = None,
    state: Sequence[tuple[str, str]] = (),
) -> Dataset:
    """Random samples by :func:`edgeort.feeds.random_array`'s rule: floats standard
    normal, masks ones, other integers ``0 .. vocab[name]-1`` when the embedding table
    size is known (``vocab``) else zeros, booleans True. State inputs (``state`` pairs):
    zeros. Dynamic dims become 1 (the first axis, a name containing "batch", or any of a
    state input's) or 8 (others); a named dim has one size across all inputs.
    """
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {}
    state_inputs = {i for i, _ in state}
    for info in inputs:
        dims = []
        for i, d in enumerate(info.shape):
            if isinstance(d, int):
                dims.append(d)
                continue
            batch_like = i == 0 or "batch" in (d or "").lower() or info.name in state_inputs
            size = 1 if batch_like else 8
            dims.append(sizes.setdefault(d, size) if d else size)
        shape = (samples, *dims)
        if info.name in state_inputs:
            arrays[info.name] = np.zeros(shape, dtype=np.dtype(info.dtype))
        else:
            arrays[info.name] = random_array(
                info.name, info.dtype, shape, rng, vocab=(vocab or {}).get(info.name)
            )
    stacked = {info.name: True for info in inputs}
    note = f"synthetic inputs ({samples} samples, seed {seed}): no data file was given"
    return Dataset(arrays, stacked, samples, "synthetic", True, None, (note,), tuple(state))


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


def check_index_ranges(data: Dataset, vocab: Mapping[str, int], path: str | Path) -> None:
    """Integer inputs that index an embedding table (:func:`vocab_sizes`) hold valid
    indices (``-size <= id < size``, as ``Gather`` takes them): else a :class:`DataError`
    naming the file, the input, the first bad sample and the allowed range."""
    for name, size in vocab.items():
        arr = data.arrays.get(name)
        if arr is None or arr.dtype.kind not in "iu" or arr.size == 0:
            continue
        bad = (arr < -size) | (arr >= size)
        if bad.any():
            where = np.argwhere(bad)[0]
            raise DataError(
                f"{path}: input {name!r} holds index {int(arr[tuple(where)])} at sample "
                f"{int(where[0])}, outside the embedding table it indexes (size {size}: "
                f"valid ids are {-size}..{size - 1}); {int(bad.sum())} value(s) out of range",
                path=path,
            )
