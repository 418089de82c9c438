"""Real image folders built on the fly from the built-in digits: PNG and TIFF files, a corrupt one, a text file."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, read_split, run, write_digit_folder, write_params
from edgecompress.data import image_folder, sources
from edgecompress.core.errors import UserError
from edgecompress.core.names import NO_DATA


def folder(root, **options):
    """A small digit folder: 6 images in each of 3 classes unless told otherwise."""
    write_digit_folder(root, **({"per_class": 6, "classes": (0, 1, 2)} | options))


def load(root, **options):
    settings = dict(image_size=32, channels=1, limit_per_class=0, skip_corrupt=False, seed=0)
    return sources.load("folder", root, root, **(settings | options))


def read(source):
    """(x, y) of every readable image of `source`, read one at a time as prepare reads them."""
    kept = [(source.image(i), label) for i, label in enumerate(source.labels)]
    kept = [(image, label) for image, label in kept if image is not None]
    return np.stack([image for image, _ in kept]), np.array([label for _, label in kept])


def test_folder_gives_sorted_class_names_and_every_image(tmp_path):
    folder(tmp_path / "set", per_class=6, classes=(2, 0, 1))
    (tmp_path / "set/digit_0/notes.txt").write_text("not an image")
    (tmp_path / "set/README").write_text("next to the class folders")
    source = load(tmp_path / "set")
    assert source.classes == ["digit_0", "digit_1", "digit_2"]
    x, y = read(source)
    assert x.shape == (18, 32, 32, 1) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [6, 6, 6]
    notes = source.notes["data.path"]
    assert notes["ignored_not_images"] == 2 and notes["skipped_corrupt"] == 0


def test_png_and_tiff_decode_to_the_same_pixels(tmp_path):
    image = sources.load_digits()[0][5]
    for suffix in (".png", ".tif", ".bmp", ".gif", ".jpg"):
        Image.fromarray(image).save(tmp_path / f"d{suffix}")
    png = image_folder.decode(tmp_path / "d.png", 32, 1)
    assert png.shape == (32, 32, 1)
    for suffix in (".tif", ".bmp", ".gif"):  # lossless
        assert np.array_equal(image_folder.decode(tmp_path / f"d{suffix}", 32, 1), png), suffix
    assert np.abs(image_folder.decode(tmp_path / "d.jpg", 32, 1).astype(int) - png).mean() < 10
    assert image_folder.decode(tmp_path / "d.tif", 40, 3).shape == (40, 40, 3)


def test_limit_per_class_is_a_seeded_pick(tmp_path):
    folder(tmp_path / "set", per_class=8)
    (a, y), (b, _) = read(load(tmp_path / "set", limit_per_class=3)), read(load(tmp_path / "set", limit_per_class=3))
    assert np.bincount(y).tolist() == [3, 3, 3] and np.array_equal(a, b)
    assert not np.array_equal(a, read(load(tmp_path / "set", limit_per_class=3, seed=1))[0])


def truncated_png(path):
    Image.new("L", (64, 64), 128).save(path.with_suffix(".full.png"))
    path.write_bytes(path.with_suffix(".full.png").read_bytes()[:60])
    path.with_suffix(".full.png").unlink()


def test_a_corrupt_image_is_named_or_skipped_and_counted(tmp_path):
    folder(tmp_path / "set")
    bad = tmp_path / "set/digit_1/zz_truncated.png"
    truncated_png(bad)
    (tmp_path / "set/digit_2/zz_text.tif").write_text("this is text with an image suffix")
    with pytest.raises(UserError, match=rf"data.path: {bad} is not a readable image .*data.skip_corrupt: true"):
        read(load(tmp_path / "set"))
    source = load(tmp_path / "set", skip_corrupt=True)
    assert np.bincount(read(source)[1]).tolist() == [6, 6, 6]
    notes = source.notes["data.path"]
    assert notes["skipped_corrupt"] == 2 and str(bad) in notes["skipped_files"] and notes["images"] == 18


@pytest.mark.parametrize("build, message", [
    (lambda root: None, "is not a folder"),
    (lambda root: (root.mkdir(), (root / "a.png").write_bytes(b"")), "has no class folders"),
    (lambda root: (folder(root), (root / "empty").mkdir()), "class folder .*empty has no images"),
    (lambda root: (folder(root), (root / "texts").mkdir(), (root / "texts/a.txt").write_text("x")),
     "class folder .*texts has no images"),
    (lambda root: folder(root, classes=(3,)), "a single class \\(digit_3\\)"),
])
def test_bad_folders_are_refused_with_one_clear_message(tmp_path, build, message):
    build(tmp_path / "set")
    with pytest.raises(UserError, match=f"data.path: .*{message}"):
        load(tmp_path / "set")


def test_every_image_corrupt_in_a_class_is_refused_even_when_skipping(tmp_path):
    folder(tmp_path / "set", classes=(0, 1))
    (tmp_path / "set/digit_9").mkdir()
    for name in "abc":
        truncated_png(tmp_path / f"set/digit_9/{name}.png")
    source = load(tmp_path / "set", skip_corrupt=True)
    splits = sources.stratified_split(np.arange(len(source.labels)), source.labels, 0.2, 0.2, seed=0)
    with pytest.raises(UserError, match="no readable images left in class folder.* digit_9"):
        sources.write_splits(source, splits, tmp_path / "data", (32, 32, 1), shard_bytes=2**20)


def test_a_separate_test_folder_must_have_the_same_classes(tmp_path):
    folder(tmp_path / "train", per_class=10)
    folder(tmp_path / "test", per_class=4, start=10)
    settings = dict(image_size=32, channels=3, limit_per_class=0, skip_corrupt=False, seed=0)
    source = sources.load("folder", tmp_path / "train", tmp_path / "test", **settings)
    assert len(source.labels) == 30 and np.bincount(source.test.labels).tolist() == [4, 4, 4]
    assert read(source.test)[0].shape == (12, 32, 32, 3)
    splits = sources.stratified_split(np.arange(30), source.labels, 0.2, 0.5, seed=0,
                                      test=(np.arange(12), source.test.labels))
    assert {k: len(y) for k, (_, y) in splits.items()} == {"train": 24, "val": 6, "test": 12}
    folder(tmp_path / "other", per_class=4, classes=(0, 1, 5))
    with pytest.raises(UserError, match=r"data.test_path: the classes of .*other \(digit_0, digit_1, digit_5\) do "
                                        r"not match those of data.path"):
        sources.load("folder", tmp_path / "train", tmp_path / "other", **settings)


def test_a_test_path_left_at_the_placeholder_draws_the_test_split_from_path(tmp_path, monkeypatch):
    folder(tmp_path / "train", per_class=10)
    (tmp_path / NO_DATA).mkdir()
    (tmp_path / NO_DATA / "README.md").write_text("placeholder")
    monkeypatch.chdir(tmp_path)
    source = sources.load("folder", tmp_path / "train", NO_DATA, image_size=32, channels=1)
    assert source.test is None and len(source.labels) == 30 and list(source.notes) == ["data.path"]


def test_too_few_images_to_split_by_class_is_explained(tmp_path):
    folder(tmp_path / "set", per_class=2)
    source = load(tmp_path / "set")
    with pytest.raises(UserError, match="cannot split 6 images by class \\(images per label: 0: 2, 1: 2, 2: 2\\)"):
        sources.stratified_split(np.arange(6), source.labels, 0.15, 0.2, seed=0)


def test_npz_with_and_without_a_test_set(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 12, 12)), np.repeat([3, 7], 10)
    np.savez(tmp_path / "a.npz", x_train=x, y_train=y, x_test=x[:4, ..., None], y_test=y[:4])
    source = sources.load("npz", tmp_path / "a.npz", tmp_path / "a.npz", image_size=32, channels=1)
    x = read(source)[0]
    assert source.classes == ["3", "7"] and source.labels.tolist() == [0] * 10 + [1] * 10
    assert x.shape == (20, 32, 32, 1) and read(source.test)[0].shape == (4, 32, 32, 1)
    assert x.max() > 200  # floats in [0, 1] scaled to bytes
    np.savez(tmp_path / "b.npz", x_train=(x * 255).astype(np.uint8), y_train=y, class_names=np.array(["no", "yes"]))
    source = sources.load("npz", tmp_path / "b.npz", tmp_path / "b.npz", image_size=32, channels=3)
    assert source.classes == ["no", "yes"] and source.test is None and read(source)[0].shape[-1] == 3


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 8, 8)), "y": np.zeros(4)}, "holds x, y; expected x_train and y_train"),
    ({"x_train": np.zeros((4, 8, 8)), "y_train": np.arange(4), "x_test": np.zeros((1, 8, 8))},
     "optionally x_test with y_test"),
    ({"x_train": np.zeros((4, 8, 8)), "y_train": np.zeros(4)}, "1 distinct label"),
    ({"x_train": np.zeros((4, 8, 8)), "y_train": np.arange(3)}, "y_train must be one label per image"),
    ({"x_train": np.zeros((4, 8)), "y_train": np.arange(4)}, "x_train has shape \\(4, 8\\)"),
])
def test_bad_npz_is_refused_with_one_clear_message(tmp_path, arrays, message):
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(UserError, match=f"data.path: .*{message}"):
        sources.load("npz", tmp_path / "a.npz", tmp_path / "a.npz", image_size=32, channels=1)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(UserError, match="is not a readable .npz file"):
        sources.load("npz", tmp_path / "text.npz", tmp_path / "text.npz", image_size=32, channels=1)
    with pytest.raises(UserError, match="does not exist"):
        sources.load("npz", tmp_path / "nope.npz", tmp_path / "nope.npz", image_size=32, channels=1)


def test_prepare_stage_on_a_folder_with_a_separate_test_set(tmp_path):
    folder(tmp_path / "images/train", per_class=10)
    folder(tmp_path / "images/test", per_class=4, start=10)
    (tmp_path / "images/train/digit_0/Thumbs.db").write_bytes(b"\0")
    write_params(tmp_path, {"data": {"source": "folder", "path": "images/train", "test_path": "images/test"}})
    run(["python", str(ROOT / "stages/prepare.py"), "data"], tmp_path)
    card = json.loads((tmp_path / "data/dataset.json").read_text())
    assert card["classes"] == ["digit_0", "digit_1", "digit_2"]
    assert card["counts"]["test"] == {"digit_0": 4, "digit_1": 4, "digit_2": 4, "total": 12}
    assert card["counts"]["train"]["total"] + card["counts"]["val"]["total"] == 30
    assert card["files"]["data.path"]["ignored_not_images"] == 1
    assert read_split(tmp_path / "data/test")[0].shape == (12, 32, 32, 1)


def test_prepare_stage_stops_on_a_corrupt_image_and_writes_nothing(tmp_path):
    folder(tmp_path / "images", per_class=10)
    truncated_png(tmp_path / "images/digit_2/broken.png")
    write_params(tmp_path, {"data": {"source": "folder", "path": "images", "test_path": "images"}})
    result = run(["python", str(ROOT / "stages/prepare.py"), "data"], tmp_path, check=False)
    assert result.returncode == 2 and not (tmp_path / "data").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "images/digit_2/broken.png is not a readable image" in lines[0]
