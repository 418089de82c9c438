"""train: fit the baseline classifier (train.architecture) on DATA_DIR; save it in MODEL_DIR."""
from pathlib import Path

from edgecompress import params
from edgecompress.errors import run_stage
from edgecompress.files import read_json


def main(data_dir, model_dir):
    p = params.load("seed", "train")
    cfg, seed = p["train"], p["seed"]
    from edgecompress import models, runs, training  # TensorFlow loads only once params are valid

    card = read_json(Path(data_dir) / "dataset.json")
    splits = runs.splits(data_dir)
    training.seed_everything(seed)
    model = models.build(cfg["architecture"], card["image_shape"], len(card["classes"]), cfg["width"])
    fit = training.fit(model, splits, optimizer=cfg["optimizer"], learning_rate=cfg["learning_rate"],
                       schedule=cfg["schedule"], epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed,
                       augment=runs.augmenter(cfg, seed), keep_best=cfg["keep_best"])
    runs.save(model_dir, model, fit)


if __name__ == "__main__":
    run_stage(main)
