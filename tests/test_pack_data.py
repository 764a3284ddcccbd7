"""Calibration/validation data: loading, checking against the model, synthesis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeort.bundle import TensorSpec as IOInfo
from edgeort.errors import DataError
from edgeort.pack.data import (
    LABELS,
    SEQUENCE,
    DatasetReader,
    load_data,
    synthetic_data,
    vocab_sizes,
)
from tests.models import make_bert_like

IMAGE = IOInfo("image", "float32", ("batch", 1, 8, 8))
IDS = IOInfo("input_ids", "int64", ("batch", "sequence"))


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_samples_are_fed_one_by_one_with_a_batch_axis(tmp_path: Path) -> None:
    x = np.arange(5 * 64, dtype=np.float32).reshape(5, 1, 8, 8)
    labels = np.array([0, 1, 2, 3, 4])
    data = load_data(_npz(tmp_path / "d.npz", image=x, **{LABELS: labels}), [IMAGE])
    assert data.samples == 5 and not data.synthetic
    assert np.array_equal(data.labels, labels)
    feeds = list(data.feeds())
    assert len(feeds) == 5
    assert feeds[2]["image"].shape == (1, 1, 8, 8)
    assert np.array_equal(feeds[2]["image"][0], x[2])
    assert data.head(2).samples == 2 and list(data.head(2).labels) == [0, 1]


def test_stacked_arrays_rank_plus_one(tmp_path: Path) -> None:
    fixed = IOInfo("image", "float32", (1, 1, 8, 8))
    x = np.ones((3, 1, 1, 8, 8), dtype=np.float32)
    data = load_data(_npz(tmp_path / "d.npz", image=x), [fixed])
    assert data.sample(0)["image"].shape == (1, 1, 8, 8)


def test_directory_of_npy_files(tmp_path: Path) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    np.save(folder / "image.npy", np.zeros((4, 1, 8, 8), dtype=np.float32))
    data = load_data(folder, [IMAGE])
    assert data.samples == 4 and data.source == str(folder)


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        ({"img": np.zeros((2, 1, 8, 8), np.float32)}, "missing input(s) 'image'"),
        (
            {"image": np.zeros((2, 1, 8, 8), np.float32), "extra": np.zeros(2)},
            "unknown array(s) 'extra'",
        ),
        ({"image": np.zeros((2, 1, 8, 8), np.float64)}, "dtype float64, expected float32"),
        ({"image": np.zeros((2, 1, 9, 8), np.float32)}, "dimension 2 is 9, expected 8"),
        ({"image": np.zeros((2, 8, 8), np.float32)}, "shape [2, 8, 8], expected [samples"),
        ({"image": np.zeros((0, 1, 8, 8), np.float32)}, "no samples"),
        (
            {"image": np.zeros((2, 1, 8, 8), np.float32), LABELS: np.zeros(3, np.int64)},
            "expected 2 integer class indices",
        ),
        (
            {"image": np.zeros((2, 1, 8, 8), np.float32), SEQUENCE: np.zeros(2, np.float32)},
            "'__sequence__': expected 2 integer sequence ids (shape [2]), got dtype float32",
        ),
    ],
)
def test_one_clear_error_per_mismatch(tmp_path: Path, arrays: dict, needle: str) -> None:
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as info:
        load_data(path, [IMAGE])
    message = str(info.value)
    assert needle in message
    assert str(path) in message


def test_sample_counts_must_agree(tmp_path: Path) -> None:
    mask = IOInfo("attention_mask", "int64", ("batch", "sequence"))
    path = _npz(
        tmp_path / "d.npz",
        input_ids=np.zeros((3, 4), np.int64),
        attention_mask=np.ones((2, 4), np.int64),
    )
    with pytest.raises(DataError, match="different sample counts"):
        load_data(path, [IDS, mask])


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_unreadable_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"x\.npz"):
        load_data(path, [IMAGE])


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_data(tmp_path / "nope.npz", [IMAGE])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.npy files"):
        load_data(tmp_path / "empty", [IMAGE])


def test_synthetic_data_stays_in_range(tmp_path: Path) -> None:
    model = onnx.load(str(make_bert_like(tmp_path, vocab=50)))
    vocab = vocab_sizes(model)
    assert vocab == {"input_ids": 50}
    mask = IOInfo("attention_mask", "int64", ("batch", "sequence"))
    data = synthetic_data([IDS, mask, IMAGE], samples=6, vocab=vocab)
    assert data.synthetic and data.source == "synthetic" and data.samples == 6
    ids = data.arrays["input_ids"]
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 50
    assert np.all(data.arrays["attention_mask"] == 1)
    feed = data.sample(0)
    assert feed["input_ids"].shape == (1, 8) and feed["image"].shape == (1, 1, 8, 8)
    assert feed["image"].dtype == np.float32
    assert "synthetic" in data.notes[0]


def test_reader_feeds_every_sample_and_rewinds(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    reader = DatasetReader(load_data(_npz(tmp_path / "d.npz", image=x), [IMAGE]), limit=3)
    got = [reader.get_next() for _ in range(4)]
    assert got[3] is None and all(g is not None for g in got[:3])
    reader.rewind()
    first = reader.get_next()
    assert first is not None and np.array_equal(first["image"][0], x[0])


def test_a_single_npy_file_is_refused_with_the_format(tmp_path: Path) -> None:
    path = tmp_path / "image.npy"
    np.save(path, np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(DataError, match=r"a single array, expected an \.npz"):
        load_data(path, [IMAGE])


def test_one_npy_reader_names_the_file_and_the_array(tmp_path: Path) -> None:
    """--input, load_feeds and the packager's data all read through edgeort.feeds: no
    pickles, and an .npz where one array belongs is a DataError, not a crash."""
    from types import SimpleNamespace

    from edgeort.cli.commands_run import parse_inputs
    from edgeort.feeds import load_feeds, read_npy

    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    archive = tmp_path / "two.npz"
    np.savez(archive, x=np.zeros(3, np.float32))
    with pytest.raises(DataError, match=r"objects\.npy: cannot read input 'x' as \.npy"):
        read_npy(objects, what="input 'x'")
    with pytest.raises(DataError, match=r"two\.npz: --input x: an \.npz archive"):
        parse_inputs([f"x={archive}"])
    arg = SimpleNamespace(name="x", type="tensor(float)", shape=[3])
    with pytest.raises(DataError, match=r"two\.npz: input 'x': an \.npz archive"):
        load_feeds({"x": archive}, [arg])
    folder = tmp_path / "data"
    folder.mkdir()
    np.save(folder / "x.npy", np.zeros((2, 3), np.float32))
    np.save(folder / "y.npy", np.array([{"b": 2}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"y\.npy: cannot read array 'y' as \.npy"):
        load_data(folder, [IOInfo("x", "float32", (1, 3))])


def test_a_state_input_left_out_is_zeros_sized_by_the_given_inputs(tmp_path: Path) -> None:
    chunk = IOInfo("chunk", "float32", ("batch", "frames"))
    state = IOInfo("state", "float32", (2, "batch", "frames", None))
    path = _npz(tmp_path / "s.npz", chunk=np.ones((3, 1, 5), np.float32))
    data = load_data(path, [chunk, state], state=[("state", "stateN")])
    assert data.arrays["state"].shape == (3, 2, 1, 5, 1)
    assert not data.arrays["state"].any() and data.stacked["state"]
    assert data.notes == ("state input 'state': zeros [2, 1, 5, 1] at each sequence start",)
