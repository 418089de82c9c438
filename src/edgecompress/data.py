"""Datasets as uint8 image arrays (N, H, W, C) with integer labels, split and stored as .npz files.

Models take float32 pixels in [0, 1]: `to_float` is the one conversion, applied at training and conversion
time; the standalone runner applies the same scale.
"""
import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from edgecompress.files import atomic_path

SPLITS = ("train", "val", "test")


def load_digits():
    """scikit-learn's handwritten digits (1797 8x8 images, 10 classes): real data that ships offline."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    class_names = [str(c) for c in digits.target_names]
    return images, digits.target.astype(np.int64), class_names


SOURCES = {"digits": load_digits}


def load_source(source: str):
    """(images, labels, class_names) from the source that `data.source` names."""
    return SOURCES[source]()


def resize(images, size: int, channels: int) -> np.ndarray:
    """Resize grayscale or RGB uint8 images to (size, size) with bilinear filtering and set the channels."""
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(images), size, size, channels), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image).convert(mode).resize((size, size), Image.BILINEAR)
        out[i] = np.asarray(pil).reshape(size, size, channels)
    return out


def stratified_split(x, y, val_fraction: float, test_fraction: float, seed: int):
    """Split into {'train', 'val', 'test'}: (x, y), each class in the same proportion in every split."""
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1 - test_fraction), stratify=y_rest, random_state=seed
    )
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def save_split(path, x, y) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, x=x, y=y)


def load_split(path):
    with np.load(path) as npz:
        return npz["x"], npz["y"]


def to_float(x) -> np.ndarray:
    return x.astype(np.float32) / 255.0


def describe(splits, class_names, source: str) -> dict:
    """The dataset card written next to the splits: classes, counts and image shape."""
    x_train = splits["train"][0]
    return {
        "source": source,
        "classes": class_names,
        "image_shape": list(x_train.shape[1:]),
        "counts": {
            name: {c: int((y == i).sum()) for i, c in enumerate(class_names)} | {"total": int(len(y))}
            for name, (_, y) in splits.items()
        },
    }
