"""qat | pqat | cqat | pcqat: quantization-aware fine-tuning of an upstream model, preserving what it gained."""
import sys

from edgecompress import params
from edgecompress.errors import UserError, run_stage

# stage -> (upstream model, what the QAT scheme preserves); cqat's upstream is the variant cqat.variant names
CHAINS = {
    "qat": ("baseline", "none"),
    "pqat": ("pruned", "sparsity"),
    "cqat": ("clustered_{variant}", "clusters"),
    "pcqat": ("cluster_sparse", "clusters_and_sparsity"),
}
CARRIED = ("pruned_layers", "clustered_layers", "clusters")  # upstream facts that stay true after QAT


def main(stage):
    if stage not in CHAINS:
        raise UserError(f"unknown QAT stage {stage!r}; expected one of {', '.join(CHAINS)}")
    p = params.load("seed", "train", stage)
    cfg, seed = p[stage], p["seed"]
    source, preserve = CHAINS[stage]
    source = source.format(**cfg)
    from edgecompress import qat, runs, training  # TensorFlow loads only once params are valid

    upstream_model, upstream = runs.load(source)
    training.seed_everything(seed)
    model = qat.quantize(upstream_model, preserve)
    record = runs.fine_tune(model, runs.splits(), p["train"], cfg["epochs"], cfg["learning_rate"], seed)
    runs.save(stage, model, record, source=source, params_count=upstream["params_count"],
              quantization_aware=True, **{key: upstream[key] for key in CARRIED if key in upstream})


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1]))
