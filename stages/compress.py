"""compress: make the model MODEL_DIR names (an entry of params.yaml's `models`) from the model in SOURCE_DIR by
its method, fine-tuned on DATA_DIR; its teacher, if the entry names one, is the model of that name beside it.

report.damage_points only decides whether the stage prints its damage line (the report flags the same models), so
it is not among the stage's DVC params: changing it retrains nothing."""
from pathlib import Path

from edgecompress import methods
from edgecompress.core import params
from edgecompress.core.errors import UserError, run_stage


def main(data_dir, source_dir, model_dir):
    name, p = Path(model_dir).name, params.load("seed", "train", "models")
    damage_points = params.load_key("report", "damage_points", params.POINTS)
    compression = methods.configured(p["models"], name)
    entry = p["models"][name]
    if Path(source_dir).name != entry["from"]:
        raise UserError(f"compress: {source_dir} is not models.{name}.from ({entry['from']}); run it as dvc.yaml does")
    from edgecompress.train import runs  # TensorFlow loads only once params are valid

    strategy = runs.strategy(p["train"], f"compress {name}", compression.undistributable)
    if "teacher" in entry:
        with strategy.scope():
            compression.use_teacher(runs.load(Path(model_dir).parent / entry["teacher"])[0], entry["teacher"])
    runs.compress(compression, source_dir, model_dir, data_dir, p["train"], p["seed"], damage_points, strategy)


if __name__ == "__main__":
    run_stage(main)
