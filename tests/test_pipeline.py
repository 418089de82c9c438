"""End to end: one run of the pipeline (`make run`'s lanes) on tiny params, then the files, keys and caching it
must produce."""
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import run, set_param
from edgecompress.measure import tflite_weights

QUANTS = ("fp32", "fp16", "dynamic", "int8", "int16x8")
FLOAT_MODELS = ("baseline", "pruned", "clustered_kpp32", "clustered_lin32", "clustered_kpp256", "cluster_sparse",
                "student_distilled", "student_attention", "student_scratch", "filter_pruned", "filter_pruned_kd",
                "lowrank")
QAT_MODELS = ("qat", "pqat", "cqat", "pcqat", "filter_pruned_kd_qat")
MODEL_QUANTS = [(m, q) for m in FLOAT_MODELS for q in QUANTS] + [(m, "int8") for m in QAT_MODELS]
KEYS = ("accuracy", "macro_precision", "macro_recall", "size_bytes", "gzip_bytes", "latency_p50_ms",
        "latency_p90_ms", "latency_mean_ms", "total_s", "sparsity", "max_distinct_per_channel")


def metrics_of(repo, model):
    return json.loads((repo / f"metrics/{model}.json").read_text())


def test_metrics_have_every_model_quantization_and_key(pipeline):
    for model in FLOAT_MODELS + QAT_MODELS:
        metrics = metrics_of(pipeline, model)
        assert metrics["params_count"] > 0 and metrics["macs"] > 0 and metrics["epoch_seconds"] > 0, model
        assert metrics["protocol"] == {"threads": 1, "warmup": 2, "runs": 1, "batch_size": 1, "images": 360}
        assert {key for key in metrics if key in QUANTS} == {q for m, q in MODEL_QUANTS if m == model}
    for model, quant in MODEL_QUANTS:
        block = metrics_of(pipeline, model)[quant]
        assert set(KEYS) <= set(block), (model, quant)
        assert 0.0 <= block["accuracy"] <= 1.0
        assert block["size_bytes"] == (pipeline / f"models/{model}/tflite/{quant}.tflite").stat().st_size
        assert 0 < block["gzip_bytes"] < block["size_bytes"]
        assert 0 < block["latency_p50_ms"] <= block["latency_p90_ms"]
        assert block["total_s"] > 0 and 0 <= block["sparsity"] < 1 and block["max_distinct_per_channel"] >= 1


def tiny_params(repo):
    return yaml.safe_load((repo / "params.yaml").read_text())


def test_pcqat_int8_keeps_the_pruned_sparsity_and_the_clusters_per_channel(pipeline):
    p = tiny_params(pipeline)
    target, clusters = p["prune"]["final_sparsity"], p["cluster_sparse"]["clusters"]
    clustered = set(json.loads((pipeline / "models/pcqat/train.json").read_text())["clustered_layers"])
    kernels = dict(tflite_weights.kernels(pipeline / "models/pcqat/tflite/int8.tflite"))
    assert clustered and clustered <= set(kernels)
    for name in clustered:
        kernel = kernels[name]
        assert kernel.dtype.name == "int8"
        assert abs((kernel == 0).mean() - target) <= 0.02, name
        assert max(len(set(channel.ravel())) for channel in kernel) <= clusters + 1, name
    assert abs(metrics_of(pipeline, "pcqat")["int8"]["sparsity"] - target) <= 0.02


def test_clustered_models_keep_at_most_their_clusters_per_channel(pipeline):
    clusters = tiny_params(pipeline)["cluster"]["variants"]["kpp32"]["clusters"]
    metrics = metrics_of(pipeline, "clustered_kpp32")
    assert all(metrics[q]["max_distinct_per_channel"] <= clusters for q in QUANTS)
    assert metrics_of(pipeline, "cqat")["int8"]["max_distinct_per_channel"] <= clusters
    assert metrics_of(pipeline, "baseline")["fp32"]["max_distinct_per_channel"] > clusters


def test_dvc_metrics_show_reads_flat_keys(pipeline):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], pipeline).stdout)
    data = next(iter(shown.values()))["data"]["metrics/baseline.json"]["data"]
    assert data["int8"]["gzip_bytes"] > 0


def test_details_have_classes_confusion_and_weights(pipeline):
    details = json.loads((pipeline / "metrics/details/baseline.json").read_text())
    assert details["classes"] == [str(d) for d in range(10)]
    assert sum(map(sum, details["models"]["int8"]["confusion"])) == 360
    assert set(details["models"]["int8"]["weights"]) >= {"stem_conv", "logits"}


def test_training_curves_for_dvc_plots(pipeline):
    epochs = {"baseline": 2, "pruned": 1, "clustered_kpp32": 1, "cluster_sparse": 1, "pcqat": 1, "student_distilled": 1,
              "student_scratch": 1, "student_attention": 1, "filter_pruned": 1, "filter_pruned_kd": 1,
              "filter_pruned_kd_qat": 1, "lowrank": 1}
    for model, count in epochs.items():
        lines = (pipeline / f"plots/train/{model}.csv").read_text().splitlines()
        assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"} <= set(lines[0].split(","))
        assert len(lines) == 1 + count, model


def test_lowrank_and_the_attention_student_are_counted_on_their_saved_models(pipeline):
    from edgecompress.train import macs, models

    saved = {name: models.load(pipeline / f"models/{name}/model") for name in ("lowrank", "student_attention")}
    for name, model in saved.items():
        assert metrics_of(pipeline, name)["params_count"] == models.count_parameters(model), name
        assert metrics_of(pipeline, name)["macs"] == macs.count(model), name
    record = json.loads((pipeline / "models/lowrank/train.json").read_text())
    split = {f["layer"] for f in record["factorized_layers"] if f["factorized"]}
    assert split and {f"{name}_basis" for name in split} <= {layer.name for layer in saved["lowrank"].layers}
    assert metrics_of(pipeline, "lowrank")["params_count"] < metrics_of(pipeline, "baseline")["params_count"]
    assert metrics_of(pipeline, "lowrank")["macs"] < metrics_of(pipeline, "baseline")["macs"]
    attention = json.loads((pipeline / "models/student_attention/train.json").read_text())["attention"]
    assert attention["beta"] == tiny_params(pipeline)["distill_attention"]["beta"] and attention["pairs"]
    assert f"`student_attention` matched {attention['pairs'][0]['student']}" in (pipeline / "report/report.md").read_text()


def test_second_repro_is_a_no_op(pipeline):
    assert "up to date" in run(["dvc", "status"], pipeline).stdout


def descendants(repo, stages):
    """`stages` and every stage downstream of them in the repo's DAG (from `dvc dag --dot`)."""
    edges = re.findall(r'"([^"]+)" -> "([^"]+)"', run(["dvc", "dag", "--dot"], repo).stdout)
    found, frontier = set(stages), set(stages)
    while frontier:
        frontier = {after for before, after in edges if before in frontier} - found
        found |= frontier
    return found


def changed_stages(repo, dotted_key, value):
    original = set_param(repo, dotted_key, value)
    try:
        return set(json.loads(run(["dvc", "status", "--json"], repo).stdout))
    finally:
        (repo / "params.yaml").write_text(original)


@pytest.mark.parametrize("key, value, expected", [
    ("evaluate.threads", 2, {"evaluate@baseline", "evaluate@pruned", "evaluate@cluster_sparse", "evaluate@qat",
                             "evaluate@pqat", "evaluate@cqat", "evaluate@pcqat", "evaluate@student_distilled",
                             "evaluate@student_scratch", "evaluate_clustered@kpp32",
                             "evaluate_clustered@lin32", "evaluate_clustered@kpp256", "evaluate@filter_pruned",
                             "evaluate@filter_pruned_kd", "evaluate@filter_pruned_kd_qat",
                             "evaluate@student_attention", "evaluate@lowrank"}),
    ("convert.representative_samples", 17, {"convert@baseline", "convert@pruned", "convert@cluster_sparse",
                                            "convert@student_distilled", "convert@student_scratch",
                                            "convert_clustered@kpp32", "convert_clustered@lin32",
                                            "convert_clustered@kpp256", "convert@filter_pruned",
                                            "convert@filter_pruned_kd", "convert@student_attention",
                                            "convert@lowrank"}),
    ("train.epochs", 3, {"train"}),
    ("data.test_fraction", 0.25, {"prepare"}),
])
def test_status_names_only_the_stages_reading_the_param(pipeline, key, value, expected):
    assert changed_stages(pipeline, key, value) == expected


@pytest.mark.parametrize("key, value, direct, downstream", [
    ("cluster.variants.kpp32.clusters", 16, {"cluster@kpp32"},
     {"convert_clustered@kpp32", "evaluate_clustered@kpp32", "compress@cqat", "convert_qat@cqat", "evaluate@cqat",
      "report"}),
    ("prune.final_sparsity", 0.5, {"compress@pruned"},
     {"convert@pruned", "evaluate@pruned", "compress@pqat", "convert_qat@pqat", "evaluate@pqat",
      "compress@cluster_sparse", "convert@cluster_sparse", "evaluate@cluster_sparse", "compress@pcqat",
      "convert_qat@pcqat", "evaluate@pcqat", "report"}),
    ("distill.alpha", 0.5, {"distill"}, {"convert@student_distilled", "evaluate@student_distilled", "report"}),
    ("distill.epochs", 2, {"distill", "train_student", "distill_attention"},
     {"convert@student_distilled", "evaluate@student_distilled", "convert@student_scratch",
      "evaluate@student_scratch", "convert@student_attention", "evaluate@student_attention", "report"}),
    ("distill_attention.beta", 500, {"distill_attention"},
     {"convert@student_attention", "evaluate@student_attention", "report"}),
    ("lowrank.energy", 0.6, {"compress@lowrank"}, {"convert@lowrank", "evaluate@lowrank", "report"}),
    ("cluster_sparse.clusters", 8, {"compress@cluster_sparse"},
     {"convert@cluster_sparse", "evaluate@cluster_sparse", "compress@pcqat", "convert_qat@pcqat", "evaluate@pcqat",
      "report"}),
    ("pcqat.epochs", 2, {"compress@pcqat"}, {"convert_qat@pcqat", "evaluate@pcqat", "report"}),  # not cluster_sparse
    ("filter_prune.criterion", "l1", {"compress@filter_pruned"},
     {"convert@filter_pruned", "evaluate@filter_pruned", "filter_pruned_kd", "convert@filter_pruned_kd",
      "evaluate@filter_pruned_kd", "compress@filter_pruned_kd_qat", "convert_qat@filter_pruned_kd_qat",
      "evaluate@filter_pruned_kd_qat", "report"}),
    ("filter_prune_kd.alpha", 0.5, {"filter_pruned_kd"},
     {"convert@filter_pruned_kd", "evaluate@filter_pruned_kd", "compress@filter_pruned_kd_qat",
      "convert_qat@filter_pruned_kd_qat", "evaluate@filter_pruned_kd_qat", "report"}),
])
def test_a_method_param_reruns_exactly_its_chain(pipeline, key, value, direct, downstream):
    changed = changed_stages(pipeline, key, value)
    assert changed == direct
    assert descendants(pipeline, changed) == direct | downstream


def test_an_added_or_changed_image_reruns_prepare_and_everything_after_it(pipeline):
    folder = Path(tiny_params(pipeline)["data"]["path"])
    everything = set(run(["dvc", "stage", "list", "--name-only"], pipeline).stdout.split())
    image = next((folder / "3").glob("*.png"))
    original = image.read_bytes()
    added = folder / "3" / "added.png"
    for change, undo in ((lambda: added.write_bytes(original), added.unlink),
                         (lambda: Image.fromarray(255 - np.asarray(Image.open(image))).save(image),
                          lambda: image.write_bytes(original))):
        change()
        try:
            changed = set(json.loads(run(["dvc", "status", "--json"], pipeline).stdout))
        finally:
            undo()
        assert changed == {"prepare"}
        assert descendants(pipeline, changed) == everything
    assert "up to date" in run(["dvc", "status"], pipeline).stdout


def test_make_run_after_a_param_change_reruns_exactly_its_downstream(pipeline):
    original = set_param(pipeline, "distill.alpha", 0.5)  # distill's alone: train_student reads the rest of its section
    try:
        log = run([sys.executable, "-m", "edgecompress.tools.lanes"], pipeline).stdout
    finally:
        (pipeline / "params.yaml").write_text(original)
    ran = set(re.findall(r"Running stage '([^']+)'", log))
    assert ran == descendants(pipeline, {"distill"})
    assert "train_student" not in ran and "train" not in ran
    run(["dvc", "repro"], pipeline)  # back to the tiny params: restored from DVC's run cache
    assert "up to date" in run(["dvc", "status"], pipeline).stdout


def test_a_new_cluster_variant_is_one_line_in_params(pipeline, tmp_path):
    """Only params.yaml changes: the variant is trained, converted, evaluated and reported, and nothing reruns."""
    repo = tmp_path / "repo"
    shutil.copytree(pipeline, repo, symlinks=True)
    params = repo / "params.yaml"
    text = params.read_text()
    anchor = "    kpp32:\n"
    assert text.count(anchor) == 1
    params.write_text(text.replace(anchor, "    kpp8: {clusters: 8, init: kmeans_plus_plus}\n" + anchor))
    ran = set(re.findall(r"Running stage '([^']+)'", run(["dvc", "repro"], repo).stdout))
    assert ran == {"cluster@kpp8", "convert_clustered@kpp8", "evaluate_clustered@kpp8", "report"}
    metrics = metrics_of(repo, "clustered_kpp8")
    assert all(metrics[q]["max_distinct_per_channel"] <= 8 for q in QUANTS)
    all_models = (repo / "report/report.md").read_text().split("## All models\n", 1)[1]
    rows = [line for line in all_models.splitlines() if line.startswith("| clustered_kpp8 |")]
    assert len(rows) == len(QUANTS)
    assert f"| clustered_kpp8 | int8 | {metrics['int8']['accuracy']:.4f} |" in all_models
