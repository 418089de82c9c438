"""prepare: read the data source, resize, split with the seed; write DATA_DIR/{train,val,test}.npz + dataset.json."""
from pathlib import Path

from edgecompress import data, params, sources
from edgecompress.errors import run_stage
from edgecompress.files import write_json


def main(data_dir):
    p = params.load("seed", "data")
    cfg = p["data"]
    keys = ("path", "test_path", "image_size", "channels", "limit_per_class", "skip_corrupt")
    source = sources.load(cfg["source"], **{k: cfg[k] for k in keys}, seed=p["seed"],
                          progress=lambda done, total: print(f"prepare: {done:,} / {total:,} images read"))
    splits = sources.stratified_split(source.x, source.y, cfg["val_fraction"], cfg["test_fraction"], p["seed"],
                                      test=source.test)
    for name, (x_split, y_split) in splits.items():
        data.save_split(Path(data_dir) / f"{name}.npz", x_split, y_split)
    write_json(Path(data_dir) / "dataset.json", sources.describe(splits, source.classes, cfg["source"], source.notes))
    print(f"prepared {sum(len(y) for _, y in splits.values())} images of {len(source.classes)} classes in {data_dir}")


if __name__ == "__main__":
    run_stage(main)
