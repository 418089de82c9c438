"""prepare: load the data source, resize, split with the seed; write data/{train,val,test}.npz + dataset.json."""
from edgecompress import data, params
from edgecompress.errors import run_stage
from edgecompress.files import write_json


def main():
    p = params.load("seed", "data")
    cfg = p["data"]
    images, labels, classes = data.load_source(cfg["source"])
    x = data.resize(images, cfg["image_size"], cfg["channels"])
    splits = data.stratified_split(x, labels, cfg["val_fraction"], cfg["test_fraction"], p["seed"])
    for name, (x_split, y_split) in splits.items():
        data.save_split(f"data/{name}.npz", x_split, y_split)
    write_json("data/dataset.json", data.describe(splits, classes, cfg["source"]))
    print(f"prepared {sum(len(y) for _, y in splits.values())} images of {len(classes)} classes into data/")


if __name__ == "__main__":
    run_stage(main)
