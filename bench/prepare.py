"""Benchmark reading an image folder the way `prepare` does: images per second and peak memory.

Generates a class-per-folder tree of 224x224 RGB TIFF tiles (the NCT-CRC-HE-100K format; 9 classes,
`--per-class` each), then reads and resizes every image to 32x32 like the default params, one at a time as prepare does before
writing each to its shard. Peak memory stays flat however many images there are.
Run it with `make bench-prepare`.
"""
import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from edgecompress.data import sources

CLASSES = ("ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")


def generate(root: Path, per_class: int, size: int = 224) -> int:
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            tile = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)  # textured, like tissue
            tile[..., label % 3] //= 2
            Image.fromarray(tile).resize((size, size)).save(root / name / f"{name}-{i:05d}.tif")
    return sum(f.stat().st_size for f in root.rglob("*.tif"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgecompress-bench-prepare-") as tmp:
        root = Path(tmp) / "tiles"
        on_disk = generate(root, args.per_class)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        start = time.perf_counter()
        source = sources.load("folder", root, root, image_size=args.image_size, channels=3)
        images = sum(source.image(i) is not None for i in range(len(source.labels)))
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    decoded = images * 224 * 224 * 3
    print(f"read {images:,} 224x224 TIFF tiles ({on_disk / 1e6:,.0f} MB on disk, {decoded / 1e6:,.0f} MB decoded) "
          f"into {args.image_size}x{args.image_size}: {seconds:.1f} s, {images / seconds:,.0f} images/s")
    print(f"peak memory: {peak / 1e6:,.0f} MB ({(peak - before) / 1e6:,.0f} MB more than before reading; "
          "prepare holds one image at a time)")


if __name__ == "__main__":
    main()
