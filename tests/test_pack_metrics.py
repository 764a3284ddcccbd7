"""Output comparison metrics: cosine, errors, top-1, padding masks."""

from __future__ import annotations

import numpy as np
import pytest

from edgeort.pack.metrics import compare, padding_mask


def test_padded_positions_are_left_out_when_the_data_has_an_attention_mask() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2, 4, 3)).astype(np.float32)
    got = ref.copy()
    got[:, 3, :] = rng.normal(size=(2, 3))  # only the padded last position differs
    arrays = {"input_ids": np.ones((2, 4), np.int64), "attention_mask": np.ones((2, 4), np.int64)}
    arrays["attention_mask"][:, 3] = 0
    mask = padding_mask(arrays, 2)
    assert mask is not None and mask[0] == "attention_mask"
    unmasked = compare([ref], [got])
    masked = compare([ref], [got], mask=mask)
    assert unmasked.cosine_mean < 0.99 and unmasked.masked_by is None
    assert masked.cosine_mean == pytest.approx(1.0) and masked.max_abs == 0.0
    assert masked.masked_by == "attention_mask"
    # a real difference at a real token still counts
    got[0, 0, 0] += 5.0
    assert compare([ref], [got], mask=mask).cosine_min < 0.99


def test_no_mask_input_means_no_masking() -> None:
    assert padding_mask({"image": np.ones((3, 1, 8, 8), np.float32)}, 3) is None
    assert padding_mask({"attention_mask": np.ones((3, 1), np.int64)}, 3) is None
