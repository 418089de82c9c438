"""prepare: read the data source, resize, split with the seed; write data/{train,val,test}.npz + dataset.json."""
from edgecompress import data, params
from edgecompress.errors import run_stage
from edgecompress.files import write_json


def main():
    p = params.load("seed", "data")
    cfg = p["data"]
    keys = ("path", "test_path", "image_size", "channels", "limit_per_class", "skip_corrupt")
    source = data.load(cfg["source"], **{k: cfg[k] for k in keys}, seed=p["seed"],
                       progress=lambda done, total: print(f"prepare: {done:,} / {total:,} images read"))
    splits = data.stratified_split(source.x, source.y, cfg["val_fraction"], cfg["test_fraction"], p["seed"],
                                   test=source.test)
    for name, (x_split, y_split) in splits.items():
        data.save_split(f"data/{name}.npz", x_split, y_split)
    write_json("data/dataset.json", data.describe(splits, source.classes, cfg["source"], source.notes))
    print(f"prepared {sum(len(y) for _, y in splits.values())} images of {len(source.classes)} classes into data/")


if __name__ == "__main__":
    run_stage(main)
