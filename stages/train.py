"""train: fit the baseline classifier; write models/baseline/{model,train.json} and its training curve."""
from edgecompress import params
from edgecompress.errors import run_stage
from edgecompress.files import read_json


def main():
    p = params.load("seed", "train")
    cfg, seed = p["train"], p["seed"]
    from edgecompress import models, runs, training  # TensorFlow loads only once params are valid

    card = read_json("data/dataset.json")
    splits = runs.splits()
    training.seed_everything(seed)
    model = models.build(cfg["architecture"], card["image_shape"], len(card["classes"]), cfg["width"])
    record = training.fit(
        model, splits, optimizer=cfg["optimizer"], learning_rate=cfg["learning_rate"],
        schedule=cfg["schedule"], epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
        augment=runs.augmenter(cfg, seed),
        keep_best=cfg["keep_best"],
    )
    runs.save("baseline", model, record, params_count=model.count_params())


if __name__ == "__main__":
    run_stage(main)
