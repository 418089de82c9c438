"""distill: train the student (distill.student) on labels and the baseline's softened logits; save the student."""
from edgecompress import params
from edgecompress.errors import run_stage
from edgecompress.files import read_json


def main():
    p = params.load("seed", "train", "distill")
    cfg, seed = p["distill"], p["seed"]
    from edgecompress import distillation, runs, training  # TensorFlow loads only once params are valid

    teacher, _ = runs.load("baseline")
    training.seed_everything(seed)  # before building: both students start from the same weights
    student = runs.build_student(cfg, read_json("data/dataset.json"))
    distiller = distillation.Distiller(student, teacher, cfg["alpha"], cfg["temperature"])
    record = runs.train_student(distiller, p["train"], cfg, seed)
    runs.save("student_distilled", student, record, params_count=student.count_params(), teacher="baseline")


if __name__ == "__main__":
    run_stage(main)
