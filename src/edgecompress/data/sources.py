"""Where images come from (the built-in digits, a class-per-folder tree, an .npz) and how they are split."""
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from edgecompress import data
from edgecompress.data import image_folder
from edgecompress.core.errors import UserError
from edgecompress.core.names import NO_DATA


def load_digits():
    """scikit-learn's handwritten digits (1797 8x8 images, 10 classes): real data that ships offline."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    class_names = [str(c) for c in digits.target_names]
    return images, digits.target.astype(np.int64), class_names


def resize(images, size: int, channels: int) -> np.ndarray:
    """Resize grayscale or RGB uint8 images to (size, size) with bilinear filtering and set the channels."""
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(images), size, size, channels), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image).convert(mode).resize((size, size), Image.BILINEAR)
        out[i] = np.asarray(pil).reshape(size, size, channels)
    return out


def as_uint8_images(x, key: str, name: str) -> np.ndarray:
    """Arrays of (N, H, W) or (N, H, W, 1 | 3) pixels as uint8; floats up to 1.0 are read as [0, 1]."""
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
        raise UserError(f"{key}: {name} has shape {x.shape}; expected (N, H, W) or (N, H, W, 1 or 3)")
    if x.dtype != np.uint8:
        x = np.clip(np.round(x * 255 if x.max() <= 1.0 else x), 0, 255).astype(np.uint8)
    return x[..., 0] if x.ndim == 4 and x.shape[-1] == 1 else x


def load_npz(path, key: str):
    """(x_train, y_train, x_test or None, y_test or None, class names) from an .npz of arrays.

    Labels may be any integers; their sorted distinct values become classes 0..K-1 (named by an optional
    `class_names` array, else by the label values).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise UserError(f"{key}: {path} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise UserError(f"{key}: {path} is not a readable .npz file ({err})") from None
    missing = [name for name in ("x_train", "y_train") if name not in arrays]
    if missing or ("x_test" in arrays) != ("y_test" in arrays):
        raise UserError(f"{key}: {path} holds {', '.join(sorted(arrays)) or 'no arrays'}; expected x_train and "
                        "y_train, and optionally x_test with y_test")
    values = np.unique(arrays["y_train"])
    names = [str(n) for n in arrays.get("class_names", values)]
    if len(values) < 2 or len(names) != len(values):
        raise UserError(f"{key}: y_train has {len(values)} distinct label(s) and {len(names)} class name(s); "
                        "expected at least 2 labels, one name each")
    out = []
    for part in ("train", "test"):
        if f"x_{part}" not in arrays:
            out += [None, None]
            continue
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if y.ndim != 1 or len(x) != len(y) or not np.isin(y, values).all():
            raise UserError(f"{key}: y_{part} must be one label per image of x_{part}, each a y_train label")
        out += [as_uint8_images(x, key, f"x_{part}"), np.searchsorted(values, y).astype(np.int64)]
    return (*out, names)


@dataclass
class Source:
    """What `data.source` yields: labels and class names, and each image at the target size on demand, so that a
    folder's images are read one at a time while the splits are written; a test set if it has its own."""
    classes: list
    labels: np.ndarray
    image: callable  # image(i): the i-th image, (size, size, channels) uint8, or None for a skipped corrupt file
    test: "Source" = None
    notes: dict = field(default_factory=dict)  # skipped / ignored files, for the dataset card


def in_memory(x, y, classes) -> Source:
    """A source of images already at the target size (the digits, an .npz)."""
    return Source(classes, y, x.__getitem__)


def load(source: str, path, test_path, image_size: int, channels: int, limit_per_class: int = 0,
         skip_corrupt: bool = False, seed: int = 0) -> Source:
    """The data source at the target size: the built-in digits, a class-per-folder tree, or an .npz (read whole).

    A folder's test set is `test_path` unless that is `path` or the shipped placeholder (names.NO_DATA), which
    leave the test split to be drawn from `path`; an .npz's is its x_test / y_test.
    """
    if source == "digits":
        images, labels, classes = load_digits()
        return in_memory(resize(images, image_size, channels), labels, classes)
    if source == "npz":
        x, y, x_test, y_test, classes = load_npz(path, "data.path")
        loaded = in_memory(resize(x, image_size, channels), y, classes)
        if x_test is not None:
            loaded.test = in_memory(resize(x_test, image_size, channels), y_test, classes)
        return loaded
    options = dict(size=image_size, channels=channels, limit=limit_per_class, skip_corrupt=skip_corrupt, seed=seed)
    loaded = _folder(path, "data.path", **options)
    if Path(test_path).resolve() in (Path(path).resolve(), Path(NO_DATA).resolve()):
        return loaded
    loaded.test = _folder(test_path, "data.test_path", **options)
    if loaded.test.classes != loaded.classes:
        raise UserError(f"data.test_path: the classes of {test_path} ({', '.join(loaded.test.classes)}) do not "
                        f"match those of data.path {path} ({', '.join(loaded.classes)})")
    loaded.notes.update(loaded.test.notes)
    return loaded


def _folder(root, key, size, channels, limit, skip_corrupt, seed) -> Source:
    listing = image_folder.limit_per_class(image_folder.scan(root, key), limit, seed)
    skipped = []
    notes = {"folder": str(root), "images": len(listing.files), "skipped_corrupt": 0, "skipped_files": skipped,
             "ignored_not_images": len(listing.ignored), "ignored_files": [str(p) for p in listing.ignored]}

    def image(i):
        path = listing.files[i][0]
        decoded = image_folder.read_one(path, size, channels, skip_corrupt, key)
        if decoded is None:
            skipped.append(str(path))
            notes.update(images=notes["images"] - 1, skipped_corrupt=len(skipped))
        return decoded

    labels = np.array([label for _, label in listing.files], dtype=np.int64)
    return Source(listing.classes, labels, image, notes={key: notes})


def _split(x, y, fraction: float, seed: int):
    try:
        return train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)
    except ValueError as err:  # too few images in a class for every split to get some
        counts = ", ".join(f"{label}: {n}" for label, n in enumerate(np.bincount(y)))
        raise UserError(f"data: cannot split {len(y)} images by class (images per label: {counts}): {err}") from None


def stratified_split(x, y, val_fraction: float, test_fraction: float, seed: int, test=None):
    """Split into {'train', 'val', 'test'}: (x, y), each class in the same proportion in every split.

    With a separate `test` set (x, y), only train and val are split off x.
    """
    if test is None:
        x, x_test, y, y_test = _split(x, y, test_fraction, seed)
        val_fraction = val_fraction / (1 - test_fraction)
    else:
        x_test, y_test = test
    x_train, x_val, y_train, y_val = _split(x, y, val_fraction, seed)
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def write_splits(source: Source, splits: dict, data_dir, image_shape, shard_bytes: int, progress=None) -> dict:
    """Write each split ({name: (indices into the source, labels)}) as shards in data_dir/<name>, reading one image
    at a time; the test split comes from the source's own test set when it has one. Returns {name: labels}."""
    written, done, total = {}, 0, sum(len(indices) for indices, _ in splits.values())
    for name, (indices, _) in splits.items():
        origin = source.test if name == "test" and source.test is not None else source
        with data.split_writer(Path(data_dir) / name, image_shape, shard_bytes) as split:
            for i in indices:
                image = origin.image(i)
                if image is not None:
                    split.add(image, origin.labels[i])
                done += 1
                if progress and done % 5000 == 0:
                    progress(done, total)
        written[name] = np.array(split.labels, dtype=np.int64)
    empty = [c for i, c in enumerate(source.classes) if not any((y == i).any() for y in written.values())]
    if empty:
        raise UserError(f"data.path: no readable images left in class folder(s) {', '.join(empty)}")
    return written


def describe(labels: dict, image_shape, class_names, source: str, notes=None) -> dict:
    """The dataset card written next to the splits: classes (label = index), counts, image shape, skipped files."""
    return {
        "source": source,
        **({"files": notes} if notes else {}),
        "classes": class_names,
        "image_shape": list(image_shape),
        "counts": {
            name: {c: int((y == i).sum()) for i, c in enumerate(class_names)} | {"total": int(len(y))}
            for name, y in labels.items()
        },
    }
