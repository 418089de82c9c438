"""distill: train the student (distill.student) on labels and the softened logits of the teacher in TEACHER_DIR."""
from pathlib import Path

from edgecompress.core import params
from edgecompress.core.errors import run_stage
from edgecompress.core.files import read_json


def main(data_dir, teacher_dir, model_dir):
    p = params.load("seed", "train", "distill")
    cfg, seed = p["distill"], p["seed"]
    from edgecompress.train import distillation, distribute, runs, training  # TensorFlow loads once params are valid

    strategy = runs.strategy(p["train"], "distill")
    with strategy.scope():
        teacher, record = runs.load(teacher_dir)
        training.seed_everything(seed)  # before building: both students start from the same weights
        student = runs.build_student(cfg, read_json(Path(data_dir) / "dataset.json"))
        distiller = distillation.Distiller(student, teacher, cfg["alpha"], cfg["temperature"])
        fit = runs.train_student(distiller, data_dir, p["train"], cfg, seed, record.input_range)
    weights = {"labels": cfg["alpha"], "teacher": 1 - cfg["alpha"], "temperature": cfg["temperature"]}
    runs.save(model_dir, student, fit, chief=distribute.is_chief(strategy), teacher=Path(teacher_dir).name,
              input_range=record.input_range, architecture=cfg["student"], method="distill", facts=weights)


if __name__ == "__main__":
    run_stage(main)
