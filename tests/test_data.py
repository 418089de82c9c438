import numpy as np
import pytest

from conftest import ROOT, run, write_params
from edgecompress import data
from edgecompress.train import models
from edgecompress.measure import runner
from edgecompress.data import sources, streams
from edgecompress.core.errors import UserError


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


def test_shards_round_trip_exactly_through_tf_data_and_the_runner(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (50, 8, 6, 3), dtype=np.uint8), rng.integers(0, 9, 50)
    data.write_split(tmp_path / "train", x, y, shard_bytes=10 * (8 + 8 * 6 * 3))  # 10 images a shard
    split = data.open_split(tmp_path / "train")
    assert len(split) == 50 and split.image_shape == (8, 6, 3) and len(split.shards) == 5
    assert np.array_equal(split.labels, y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # no temporary left behind
    streamed = sorted((label, image.tobytes()) for image, label in streams.records(split).as_numpy_iterator())
    assert streamed == sorted((int(label), image.tobytes()) for image, label in zip(x, y))  # shards interleaved
    read = list(runner.TestSplit(tmp_path / "train"))  # numpy alone, in the order written
    assert all(np.array_equal(image, x[i]) and label == y[i] for i, (image, label) in enumerate(read))
    assert len(read) == 50


def test_streamed_batches_are_scaled_and_shuffled_the_same_way_every_time(tmp_path):
    x, y = np.arange(40 * 4, dtype=np.uint8).reshape(40, 2, 2, 1), np.arange(40) % 2
    data.write_split(tmp_path / "s", x, y, shard_bytes=2**20)
    split = data.open_split(tmp_path / "s")
    batches = list(streams.batches(split, 8, input_range=(-1, 1), seed=3, shuffle_mb=1).as_numpy_iterator())
    again = list(streams.batches(split, 8, input_range=(-1, 1), seed=3, shuffle_mb=1).as_numpy_iterator())
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))
    images = np.concatenate([images for images, _ in batches])
    assert not np.array_equal(images, data.to_float(x, (-1, 1)))  # shuffled
    assert sorted(images.ravel().tolist()) == sorted(data.to_float(x, (-1, 1)).ravel().tolist())
    assert streams.shuffle_buffer(split, buffer_mb=1) == 40 and streams.shuffle_buffer(split, 2 / 2**20) == 1
    drawn = streams.sample(split, 5, seed=1)
    picked = np.random.default_rng(1).choice(40, size=5, replace=False)
    assert np.array_equal(drawn, data.to_float(x[picked]))


def test_describe_counts_each_split():
    labels = {"train": np.array([0, 1, 1, 0]), "val": np.array([1]), "test": np.array([0])}
    card = sources.describe(labels, (32, 32, 1), ["a", "b"], "digits")
    assert card["image_shape"] == [32, 32, 1]
    assert card["counts"]["train"] == {"a": 2, "b": 2, "total": 4}


def test_a_missing_split_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"data/train is missing; run the stage that writes it first"):
        data.open_split(tmp_path / "data/train")


def test_training_on_streamed_shards_is_the_same_in_two_processes(tmp_path):
    write_params(tmp_path, {"data": {"shard_mb": 0.5}, "train": {"epochs": 1}})  # the digits in 3 train shards
    run(["python", str(ROOT / "stages/prepare.py"), "data"], tmp_path)
    assert len(data.open_split(tmp_path / "data/train").shards) == 3
    for model in ("first", "second"):
        run(["python", str(ROOT / "stages/train.py"), "data", f"models/{model}"], tmp_path)
    curves = [[line.rsplit(",", 1)[0] for line in (tmp_path / f"plots/train/{model}.csv").read_text().splitlines()]
              for model in ("first", "second")]  # every column but the last, each epoch's seconds
    assert curves[0] == curves[1]  # losses and accuracies, to the last digit
    records = [(tmp_path / f"models/{model}/train.json").read_text() for model in ("first", "second")]
    assert records[0] == records[1]  # the record holds no timing: the same bytes
    first, second = (models.load(tmp_path / f"models/{model}/model").get_weights() for model in ("first", "second"))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
