"""The prepared splits: each a folder of TFRecord shards that every stage streams, never loading a split whole.

A record is one image: its label as 8 little-endian bytes, then its uint8 pixels (height, width, channels) in
row-major order. The folder's split.json names the shards and holds the image shape and every label, so a
stage knows a split's size and classes without reading its images. TensorFlow's TFRecord framing lets tf.data
read the shards; the standalone runner (runner.py) reads the same records with numpy alone.

Models take float32 pixels in their input range ([0, 1] unless train.input_range says otherwise): `scale` is
the one conversion, on tensors as they stream and on NumPy arrays (`to_float`); the standalone runner applies
the same scale.
"""
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.core.errors import UserError
from edgecompress.core.files import atomic_path

CARD = "split.json"
LABEL_BYTES = 8  # the record's little-endian int64 label before the pixels


@dataclass(frozen=True)
class Split:
    """A prepared split on disk: its folder, shard files, image shape and labels (in record order)."""
    folder: Path
    shards: tuple
    image_shape: tuple
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def paths(self) -> list:
        return [str(self.folder / name) for name in self.shards]


def open_split(folder) -> Split:
    """The split that prepare wrote in `folder`; a missing one is a UserError naming it."""
    folder = Path(folder)
    if not (folder / CARD).is_file():
        raise UserError(f"{folder} is missing; run the stage that writes it first (dvc repro)")
    card = json.loads((folder / CARD).read_text())
    return Split(folder, tuple(card["shards"]), tuple(card["image_shape"]), np.asarray(card["labels"], np.int64))


class _ShardWriter:
    """Appends records to shards of at most `per_shard` images in `folder`."""

    def __init__(self, folder: Path, image_shape: tuple, shard_bytes: int):
        self.folder, self.image_shape = folder, image_shape
        self.per_shard = max(1, shard_bytes // (LABEL_BYTES + int(np.prod(image_shape))))
        self.labels, self.shards, self._file = [], [], None

    def add(self, image: np.ndarray, label: int) -> None:
        from edgecompress.core.backend import tf  # TensorFlow's writer frames and checksums the records

        if image.shape != self.image_shape or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image of shape {self.image_shape}, got {image.dtype} {image.shape}")
        if len(self.labels) % self.per_shard == 0:
            self.close()
            self.shards.append(f"shard-{len(self.shards):05d}.tfrecord")
            self._file = tf.io.TFRecordWriter(str(self.folder / self.shards[-1]))
        self._file.write(np.array(label, "<i8").tobytes() + image.tobytes())
        self.labels.append(int(label))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@contextlib.contextmanager
def split_writer(folder, image_shape, shard_bytes: int):
    """Write a split one image at a time (`.add(image, label)`) in shards of about `shard_bytes`; the folder
    appears under its name only once the block succeeds."""
    with atomic_path(folder, is_dir=True) as tmp:
        writer = _ShardWriter(tmp, tuple(int(n) for n in image_shape), shard_bytes)
        try:
            yield writer
        finally:
            writer.close()
        card = {"image_shape": list(writer.image_shape), "count": len(writer.labels), "shards": writer.shards,
                "labels": writer.labels}
        (tmp / CARD).write_text(json.dumps(card))


def write_split(folder, x: np.ndarray, y: np.ndarray, shard_bytes: int) -> None:
    """Write the images `x` (N, H, W, C) uint8 with labels `y` as a split in `folder`."""
    with split_writer(folder, x.shape[1:], shard_bytes) as split:
        for image, label in zip(x, y):
            split.add(image, label)


def scale(pixels, input_range=(0, 1)):
    """Float pixels in [0, 255] (a NumPy array or a tensor) mapped linearly onto `input_range` (low, high)."""
    low, high = input_range
    return pixels / 255.0 * (high - low) + low


def to_float(x, input_range=(0, 1)) -> np.ndarray:
    """uint8 pixels scaled onto `input_range` as float32."""
    return scale(x.astype(np.float32), input_range)
