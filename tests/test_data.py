import numpy as np
import pytest

from edgecompress import data, sources
from edgecompress.errors import UserError


def test_digits_are_real_and_labelled():
    images, labels, classes = sources.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert images.max() == 255 and classes == [str(d) for d in range(10)]
    assert np.bincount(labels).min() >= 170


def test_resize_sets_size_and_channels():
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8), dtype=np.uint8)
    assert sources.resize(images, 32, 1).shape == (5, 32, 32, 1)
    rgb = sources.resize(images, 40, 3)
    assert rgb.shape == (5, 40, 40, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], rgb[..., 2])  # grayscale replicated


def test_split_is_stratified_disjoint_and_seeded():
    images, labels, _ = sources.load_digits()
    ids = np.arange(len(labels))
    splits = sources.stratified_split(ids, labels, 0.15, 0.2, seed=3)
    sizes = {name: len(y) for name, (_, y) in splits.items()}
    assert sizes == {"train": 1167, "val": 270, "test": 360}
    seen = np.concatenate([x for x, _ in splits.values()])
    assert len(np.unique(seen)) == len(labels)
    for _, y in splits.values():
        share = np.bincount(y, minlength=10) / len(y)
        assert np.allclose(share, np.bincount(labels) / len(labels), atol=0.02)
    again = sources.stratified_split(ids, labels, 0.15, 0.2, seed=3)
    assert np.array_equal(again["test"][0], splits["test"][0])
    other = sources.stratified_split(ids, labels, 0.15, 0.2, seed=4)
    assert not np.array_equal(other["test"][0], splits["test"][0])


def test_save_and_load_split_roundtrip(tmp_path):
    x = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    y = np.array([1, 0])
    data.save_split(tmp_path / "s.npz", x, y)
    x2, y2 = data.load_split(tmp_path / "s.npz")
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]  # no temporary left behind


def test_describe_counts_each_split():
    x = np.zeros((6, 32, 32, 1), np.uint8)
    splits = {"train": (x[:4], np.array([0, 1, 1, 0])), "val": (x[4:5], np.array([1])),
              "test": (x[5:], np.array([0]))}
    card = sources.describe(splits, ["a", "b"], "digits")
    assert card["image_shape"] == [32, 32, 1]
    assert card["counts"]["train"] == {"a": 2, "b": 2, "total": 4}


def test_a_missing_split_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"train.npz is missing; run the stage that writes it first"):
        data.load_split(tmp_path / "data/train.npz")
