"""train_student: the distilled student's architecture trained on labels alone, the same way: the control."""
from edgecompress import params
from edgecompress.errors import run_stage
from edgecompress.files import read_json


def main():
    p = params.load("seed", "train", "distill")
    cfg, seed = p["distill"], p["seed"]
    from edgecompress import runs, training  # TensorFlow loads only once params are valid

    training.seed_everything(seed)  # before building: both students start from the same weights
    student = runs.build_student(cfg, read_json("data/dataset.json"))
    record = runs.train_student(student, p["train"], cfg, seed)
    runs.save("student_scratch", student, record, params_count=student.count_params())


if __name__ == "__main__":
    run_stage(main)
