"""prune: magnitude-prune the baseline's layers (all but prune.skip_layers) while fine-tuning; save models/pruned."""
from edgecompress import params
from edgecompress.errors import run_stage


def main():
    p = params.load("seed", "train", "prune")
    cfg, seed = p["prune"], p["seed"]
    from edgecompress import models, pruning, runs, training  # TensorFlow loads only once params are valid

    baseline, upstream = runs.load("baseline")
    layers = models.select_layers(baseline, cfg["skip_layers"], "prune.skip_layers")
    splits = runs.splits()
    schedule = pruning.schedule(
        cfg["schedule"], cfg["initial_sparsity"], cfg["final_sparsity"], cfg["begin_step"], cfg["end_step"],
        cfg["frequency"], total_steps=training.total_steps(splits, p["train"]["batch_size"], cfg["epochs"]))
    training.seed_everything(seed)
    model = pruning.prune(baseline, layers, schedule)
    record = runs.fine_tune(model, splits, p["train"], cfg["epochs"], cfg["learning_rate"], seed,
                            callbacks=pruning.callbacks())
    pruned = pruning.strip(model)
    training.reestimate_batch_norm(pruned, splits["train"][0], p["train"]["batch_size"])
    runs.save("pruned", pruned, record, source="baseline", params_count=upstream["params_count"],
              pruned_layers=layers)


if __name__ == "__main__":
    run_stage(main)
