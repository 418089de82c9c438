"""cluster_sparse: cluster the pruned model's pruned layers keeping their zeros (pcqat.clusters, pcqat.init)."""
from edgecompress import params
from edgecompress.errors import run_stage


def main():
    p = params.load("seed", "train", "pcqat")
    cfg, seed = p["pcqat"], p["seed"]
    from edgecompress import clustering, runs, training  # TensorFlow loads only once params are valid

    pruned, upstream = runs.load("pruned")
    layers = upstream["pruned_layers"]
    training.seed_everything(seed)
    model = clustering.cluster(pruned, layers, cfg["clusters"], cfg["init"], preserve_sparsity=True)
    record = runs.fine_tune(model, runs.splits(), p["train"], cfg["cluster_epochs"], cfg["cluster_learning_rate"],
                            seed)
    runs.save("cluster_sparse", clustering.strip(model), record, source="pruned",
              params_count=upstream["params_count"], pruned_layers=layers, clustered_layers=layers,
              clusters=cfg["clusters"])


if __name__ == "__main__":
    run_stage(main)
