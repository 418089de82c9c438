"""distill_attention: train the student (distill.student) on labels and the attention maps of the teacher in
TEACHER_DIR at every resolution stage (paper 001), as distill and train_student train it otherwise."""
from pathlib import Path

from edgecompress.core import params
from edgecompress.core.errors import run_stage
from edgecompress.core.files import read_json


def main(data_dir, teacher_dir, model_dir):
    p = params.load("seed", "train", "distill", "distill_attention")
    cfg, attention, seed = p["distill"], p["distill_attention"], p["seed"]
    from edgecompress.train import attention_transfer, distribute, runs, training  # TensorFlow, once params are valid

    strategy = runs.strategy(p["train"], "distill_attention")
    with strategy.scope():
        teacher, record = runs.load(teacher_dir)
        training.seed_everything(seed)  # before building: every student starts from the same weights
        student = runs.build_student(cfg, read_json(Path(data_dir) / "dataset.json"))
        pairs = attention_transfer.pair_stages(student, teacher)
        distiller = attention_transfer.AttentionDistiller(student, teacher, pairs, attention["beta"],
                                                          attention["kd_weight"], cfg["temperature"])
        fit = runs.train_student(distiller, data_dir, p["train"], cfg, seed, record.input_range)
    runs.save(model_dir, student, fit, chief=distribute.is_chief(strategy), teacher=Path(teacher_dir).name,
              input_range=record.input_range, architecture=cfg["student"],
              method="distill_attention", facts={**attention, "temperature": cfg["temperature"], "pairs": pairs})


if __name__ == "__main__":
    run_stage(main)
