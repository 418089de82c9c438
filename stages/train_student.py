"""train_student: the distilled student's architecture trained on labels alone, the same way: the control."""
from pathlib import Path

from edgecompress.core import params
from edgecompress.core.errors import run_stage
from edgecompress.core.files import read_json


def main(data_dir, model_dir):
    p = params.load("seed", "train", "distill")
    cfg, seed = p["distill"], p["seed"]
    from edgecompress.train import distribute, runs, training  # TensorFlow loads only once params are valid

    strategy = runs.strategy(p["train"], "train_student")
    input_range = tuple(p["train"]["input_range"])
    with strategy.scope():
        training.seed_everything(seed)  # before building: both students start from the same weights
        student = runs.build_student(cfg, read_json(Path(data_dir) / "dataset.json"))
        fit = runs.train_student(student, data_dir, p["train"], cfg, seed, input_range)
    runs.save(model_dir, student, fit, chief=distribute.is_chief(strategy), input_range=input_range,
              architecture=cfg["student"], method="train_student")


if __name__ == "__main__":
    run_stage(main)
