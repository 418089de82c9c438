"""cluster@<variant>: cluster the baseline's kernels as cluster.variants.<variant> says, fine-tune, save models/clustered_<variant>."""
import sys

from edgecompress import params
from edgecompress.errors import UserError, run_stage


def main(variant):
    p = params.load("seed", "train", "cluster")
    cfg, seed = p["cluster"], p["seed"]
    if variant not in cfg["variants"]:
        raise UserError(f"cluster variant {variant!r} is not in params cluster.variants: {', '.join(cfg['variants'])}")
    settings = cfg["variants"][variant]
    from edgecompress import clustering, models, runs, training  # TensorFlow loads only once params are valid

    baseline, upstream = runs.load("baseline")
    layers = models.select_layers(baseline, cfg["skip_layers"], "cluster.skip_layers")
    training.seed_everything(seed)
    model = clustering.cluster(baseline, layers, settings["clusters"], settings["init"])
    record = runs.fine_tune(model, runs.splits(), p["train"], cfg["epochs"], cfg["learning_rate"], seed)
    runs.save(f"clustered_{variant}", clustering.strip(model), record, source="baseline",
              params_count=upstream["params_count"], clustered_layers=layers, clusters=settings["clusters"])


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1]))
