"""train: fit the baseline classifier; write models/baseline/{model.h5,train.json} and its training curve."""
from edgecompress import data, params
from edgecompress.errors import run_stage
from edgecompress.files import read_json, write_json


def main():
    p = params.load("seed", "train")
    cfg, seed = p["train"], p["seed"]
    from edgecompress import models, training  # TensorFlow loads only once params are valid

    card = read_json("data/dataset.json")
    splits = {name: data.load_split(f"data/{name}.npz") for name in ("train", "val")}
    training.seed_everything(seed)
    model = models.build(cfg["architecture"], card["image_shape"], len(card["classes"]), cfg["width"])
    record = training.fit(
        model, splits, optimizer=cfg["optimizer"], learning_rate=cfg["learning_rate"],
        schedule=cfg["schedule"], epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
        augment=training.augmenter(cfg["augment"]["flip"], cfg["augment"]["rotation"], seed),
        keep_best=cfg["keep_best"],
    )
    training.save(model, "models/baseline/model.h5")
    training.write_history(record.pop("history"), "plots/train/baseline.csv")
    write_json("models/baseline/train.json", record)


if __name__ == "__main__":
    run_stage(main)
