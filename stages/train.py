"""train: fit the baseline classifier (train.architecture, or the user's train.model_file) on DATA_DIR; save it in
MODEL_DIR."""
from pathlib import Path

from edgecompress.core import params
from edgecompress.core.errors import run_stage
from edgecompress.core.files import read_json


def main(data_dir, model_dir):
    p = params.load("seed", "train")
    cfg, seed = p["train"], p["seed"]
    from edgecompress.train import baseline, distribute, runs, training  # TensorFlow loads only once params are valid

    distribute.check_mixed_precision(cfg["mixed_precision"])
    strategy = runs.strategy(cfg, "train")
    training.seed_everything(seed)
    input_range = tuple(cfg["input_range"])
    augment = cfg["augment"] if cfg["epochs"] else cfg["model_file_augment"]  # what the model's training images saw
    with strategy.scope():
        model, facts = baseline.create(cfg, read_json(Path(data_dir) / "dataset.json"))
        if cfg["epochs"] == 0:  # the user's model as it is: measured as the reference
            fit = training.untrained()
        else:
            trained = distribute.mixed(model) if cfg["mixed_precision"] else model
            fit = training.fit(trained, runs.splits(data_dir), optimizer=cfg["optimizer"],
                               learning_rate=cfg["learning_rate"], schedule=cfg["schedule"], epochs=cfg["epochs"],
                               batch_size=cfg["batch_size"], seed=seed, augment=runs.augmenter(augment, seed),
                               keep_best=cfg["keep_best"], input_range=input_range)
            model = distribute.float32(trained) if cfg["mixed_precision"] else trained
    runs.save(model_dir, model, fit, chief=distribute.is_chief(strategy), input_range=input_range, method="train",
              augment=augment, **facts)


if __name__ == "__main__":
    run_stage(main)
