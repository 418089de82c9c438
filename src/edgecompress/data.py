"""The prepared splits: uint8 image arrays (N, H, W, C) with integer labels, stored as .npz files.

Models take float32 pixels in their input range ([0, 1] unless train.input_range says otherwise): `to_float` is
the one conversion, applied at training and conversion time; the standalone runner applies the same scale.
"""
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.files import atomic_path


def save_split(path, x, y) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, x=x, y=y)


def load_split(path):
    """(x, y) of a split that prepare wrote; a missing one is a UserError naming it."""
    if not Path(path).is_file():
        raise UserError(f"{path} is missing; run the stage that writes it first (dvc repro)")
    with np.load(path) as npz:
        return npz["x"], npz["y"]


def to_float(x, input_range=(0, 1)) -> np.ndarray:
    """uint8 pixels scaled linearly onto `input_range` (low, high) as float32."""
    low, high = input_range
    return x.astype(np.float32) / 255.0 * (high - low) + low
