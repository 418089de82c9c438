"""Class-per-folder image datasets (the NCT-CRC-HE-100K layout): list the files, then decode and resize one at a time.

Memory holds one image at a time: prepare writes each to its split's shards as soon as it is resized.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgecompress.core.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)  # what PIL raises on bad files


@dataclass
class Listing:
    classes: list   # sub-folder names, sorted: a class's label is its index
    files: list     # (path, label), sorted by class then path
    ignored: list   # files that are not images (by suffix), including those next to the class folders


def scan(root, key: str) -> Listing:
    """List the images of a class-per-folder tree; `key` (the params key) names the folder in errors."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{key}: {root} is not a folder")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise UserError(f"{key}: {root} has no class folders; expected one sub-folder of images per class, "
                        f"like {root}/ADI/*.tif, {root}/BACK/*.tif")
    files, ignored = [], sorted(p for p in root.iterdir() if p.is_file())
    for label, folder in enumerate(class_dirs):
        images = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            (images if path.suffix.lower() in IMAGE_SUFFIXES else ignored).append(path)
        if not images:
            raise UserError(f"{key}: class folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
        files += [(path, label) for path in images]
    if len(class_dirs) < 2:
        raise UserError(f"{key}: {root} has a single class ({class_dirs[0].name}); a classifier needs at least 2")
    return Listing([d.name for d in class_dirs], files, ignored)


def limit_per_class(listing: Listing, limit: int, seed: int) -> Listing:
    """At most `limit` images per class, a seeded random pick (0 keeps all)."""
    if not limit:
        return listing
    rng = np.random.default_rng(seed)
    labels = np.array([label for _, label in listing.files])
    keep = []
    for label in range(len(listing.classes)):
        members = np.flatnonzero(labels == label)
        keep += sorted(rng.choice(members, min(limit, len(members)), replace=False).tolist())
    return Listing(listing.classes, [listing.files[i] for i in keep], listing.ignored)


def decode(path, size: int, channels: int) -> np.ndarray:
    """One image file as a (size, size, channels) uint8 array, resized with bilinear filtering."""
    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as image:
        image.draft(mode, (size, size))  # JPEG decodes at a reduced scale when it can; others ignore this
        resized = image.convert(mode).resize((size, size), Image.BILINEAR)
    return np.asarray(resized).reshape(size, size, channels)


def read_one(path, size: int, channels: int, skip_corrupt: bool, key: str):
    """One listed image decoded and resized; an unreadable file stops (UserError) or, skipped, gives None."""
    try:
        return decode(path, size, channels)
    except UNREADABLE as err:
        if not skip_corrupt:
            raise UserError(f"{key}: {path} is not a readable image ({err}); fix or remove it, "
                            "or set data.skip_corrupt: true to skip such files") from None
        return None
