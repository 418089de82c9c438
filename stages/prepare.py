"""prepare: read the data source, resize, split with the seed; write DATA_DIR/{train,val,test}/ (TFRecord shards
and split.json each) and DATA_DIR/dataset.json, reading and writing one image at a time."""
import numpy as np

from edgecompress.core import params
from edgecompress.data import sources
from edgecompress.core.errors import run_stage
from edgecompress.core.files import atomic_path, write_json


def main(data_dir):
    p = params.load("seed", "data")
    cfg, seed = p["data"], p["seed"]
    keys = ("path", "test_path", "image_size", "channels", "limit_per_class", "skip_corrupt")
    source = sources.load(cfg["source"], **{k: cfg[k] for k in keys}, seed=seed)
    test = (np.arange(len(source.test.labels)), source.test.labels) if source.test is not None else None
    splits = sources.stratified_split(np.arange(len(source.labels)), source.labels, cfg["val_fraction"],
                                      cfg["test_fraction"], seed, test=test)
    shape = (cfg["image_size"], cfg["image_size"], cfg["channels"])
    with atomic_path(data_dir, is_dir=True) as tmp:  # every split and the card, or nothing
        labels = sources.write_splits(source, splits, tmp, shape, int(cfg["shard_mb"] * 2**20),
                                      progress=lambda done, total: print(f"prepare: {done:,} / {total:,} images"))
        write_json(tmp / "dataset.json", sources.describe(labels, shape, source.classes, cfg["source"], source.notes))
    print(f"prepared {sum(len(y) for y in labels.values())} images of {len(source.classes)} classes in {data_dir}")


if __name__ == "__main__":
    run_stage(main)
