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

from conftest import ROOT, run, set_param
from edgecompress import methods
from edgecompress.core.names import QAT_QUANTIZATION, QUANTIZATIONS as QUANTS
from edgecompress.measure import tflite_weights
from edgecompress.methods.quantization import QuantizationAware

TRAINED = tuple(yaml.safe_load((ROOT / "dvc.yaml").read_text())["vars"][0]["trained"])  # the training stages' models
KEYS = ("accuracy", "macro_precision", "macro_recall", "size_bytes", "gzip_bytes", "latency_p50_ms",
        "latency_p90_ms", "latency_mean_ms", "total_s", "sparsity", "max_distinct_per_channel")


def metrics_of(repo, model):
    return json.loads((repo / f"metrics/{model}.json").read_text())


def tiny_params(repo):
    return yaml.safe_load((repo / "params.yaml").read_text())


def quantization_aware(repo) -> set:
    """The models params.yaml makes by a QAT method: they convert to int8 alone."""
    return {name for name, entry in tiny_params(repo)["models"].items()
            if issubclass(methods.METHODS[entry["method"]], QuantizationAware)}


def model_quants(repo) -> list:
    """Every (model, quantization) the pipeline measures, derived from params.yaml and dvc.yaml."""
    qat = quantization_aware(repo)
    return [(m, q) for m in (*TRAINED, *tiny_params(repo)["models"]) for q in QUANTS
            if q == QAT_QUANTIZATION or m not in qat]


def stage_of(kind: str, model: str) -> str:
    """The stage of `kind` (compress, convert, evaluate) for `model`, as dvc.yaml names it."""
    return f"{kind}_trained@{model}" if model in TRAINED else f"{kind}@{model}"


def test_metrics_have_every_model_quantization_and_key(pipeline):
    measured = model_quants(pipeline)
    for model in {m for m, _ in measured}:
        metrics = metrics_of(pipeline, model)
        assert metrics["params_count"] > 0 and metrics["macs"] > 0, model
        assert metrics["protocol"] == {"threads": 1, "warmup": 2, "runs": 1, "batch_size": 1, "images": 360}
        assert {key for key in metrics if key in QUANTS} == {q for m, q in measured if m == model}
    for model, quant in measured:
        block = metrics_of(pipeline, model)[quant]
        assert set(KEYS) <= set(block), (model, quant)
        assert 0.0 <= block["accuracy"] <= 1.0
        assert block["size_bytes"] == (pipeline / f"models/{model}/tflite/{quant}.tflite").stat().st_size
        assert 0 < block["gzip_bytes"] < block["size_bytes"]
        assert 0 < block["latency_p50_ms"] <= block["latency_p90_ms"]
        assert block["total_s"] > 0 and 0 <= block["sparsity"] < 1 and block["max_distinct_per_channel"] >= 1


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
    clusters = tiny_params(pipeline)["cluster"]["clusters"]  # clustered_kpp32 overrides none of cluster's settings
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


def epochs_of(repo) -> dict:
    """{model: epochs its stage trains} from params.yaml: a method's epochs in each of its rounds."""
    p = tiny_params(repo)
    found = {"baseline": p["train"]["epochs"], **{name: p["distill"]["epochs"] for name in TRAINED[1:]}}
    for name, entry in p["models"].items():
        settings = {**p[entry["method"]], **entry.get("with", {})}
        found[name] = settings["epochs"] * settings.get("steps", 1)
    return found


def test_training_curves_for_dvc_plots(pipeline):
    for model, count in epochs_of(pipeline).items():
        lines = (pipeline / f"plots/train/{model}.csv").read_text().splitlines()
        assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(lines[0].split(","))
        assert len(lines) == 1 + count, model


def test_lowrank_and_the_attention_student_are_counted_on_their_saved_models(pipeline):
    from edgecompress.train import macs, models

    saved = {name: models.load(pipeline / f"models/{name}/model") for name in ("lowrank", "student_attention")}
    for name, model in saved.items():
        assert metrics_of(pipeline, name)["params_count"] == models.count_parameters(model), name
        assert metrics_of(pipeline, name)["macs"] == macs.count(model), name
    record = json.loads((pipeline / "models/lowrank/train.json").read_text())
    split = {f["layer"] for f in record["facts"]["factorized_layers"] if f["factorized"]}
    assert split and {f"{name}_basis" for name in split} <= {layer.name for layer in saved["lowrank"].layers}
    assert metrics_of(pipeline, "lowrank")["params_count"] < metrics_of(pipeline, "baseline")["params_count"]
    assert metrics_of(pipeline, "lowrank")["macs"] < metrics_of(pipeline, "baseline")["macs"]
    attention = json.loads((pipeline / "models/student_attention/train.json").read_text())["facts"]
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


def every(kind: str, repo) -> set:
    """The stages of `kind` for every model."""
    return {stage_of(kind, m) for m in (*TRAINED, *tiny_params(repo)["models"])}


@pytest.mark.parametrize("key, value, expected", [
    ("evaluate.threads", 2, lambda repo: every("evaluate", repo)),
    ("convert.representative_samples", 17, lambda repo: every("convert", repo)),
    ("train.epochs", 3, lambda repo: {"train"}),
    ("data.test_fraction", 0.25, lambda repo: {"prepare"}),
])
def test_status_names_only_the_stages_reading_the_param(pipeline, key, value, expected):
    assert changed_stages(pipeline, key, value) == expected(pipeline)


def made_by(repo, section: str) -> set:
    """The models whose entry uses the method of params section `section`."""
    return {name for name, entry in tiny_params(repo)["models"].items() if entry["method"] == section}


def downstream_models(repo, names: set) -> set:
    """`names` and every model of params.yaml's graph that comes from one of them."""
    upstream = {name: entry["from"] for name, entry in tiny_params(repo)["models"].items()}
    found = set(names)
    while True:
        more = {name for name, source in upstream.items() if source in found} - found
        if not more:
            return found
        found |= more


@pytest.mark.parametrize("key, value", [
    ("prune.final_sparsity", 0.5), ("cluster.clusters", 16), ("cluster_sparse.clusters", 8), ("pcqat.epochs", 2),
    ("lowrank.energy", 0.6), ("filter_prune.criterion", "l1"), ("filter_prune_kd.alpha", 0.5),
    ("models.clustered_kpp256.with.clusters", 16),
])
def test_a_method_param_reruns_exactly_its_chain(pipeline, key, value):
    """A method's section reruns the models made by it, an entry's `with` that model alone; then what comes from
    them in params.yaml's graph, their conversions and evaluations, and the report (dvc dag agrees)."""
    section, *rest = key.split(".")
    direct = {rest[0]} if section == "models" else made_by(pipeline, section)
    changed = changed_stages(pipeline, key, value)
    assert changed == {f"compress@{m}" for m in direct} and direct
    affected = downstream_models(pipeline, direct)
    assert descendants(pipeline, changed) == {f"{kind}@{m}" for m in affected
                                              for kind in ("compress", "convert", "evaluate")} | {"report"}


@pytest.mark.parametrize("key, value, direct", [
    ("distill.alpha", 0.5, {"distill"}),
    ("distill.epochs", 2, {"distill", "train_student", "distill_attention"}),
    ("distill_attention.beta", 500, {"distill_attention"}),
])
def test_a_student_param_reruns_exactly_its_students(pipeline, key, value, direct):
    changed = changed_stages(pipeline, key, value)
    assert changed == direct
    students = {stage: model for stage, model in (("distill", "student_distilled"), ("train_student", "student_scratch"),
                                                  ("distill_attention", "student_attention"))}
    assert descendants(pipeline, changed) == direct | {stage_of(kind, students[s]) for s in direct
                                                       for kind in ("convert", "evaluate")} | {"report"}


@pytest.mark.parametrize("path, expected", [
    ("requirements.lock", "every stage"),  # the pinned libraries decide every model and every measurement
    ("src/edgecompress/tools/lanes.py", set()),  # how stages run, never what they compute
    ("src/edgecompress/report/selection.py", {"report"}),
])
def test_an_edited_file_reruns_exactly_the_stages_it_decides(pipeline, path, expected):
    edited = pipeline / path
    original = edited.read_text()
    edited.write_text(original + "# an appended comment line\n")
    try:
        changed = set(json.loads(run(["dvc", "status", "--json"], pipeline).stdout))
    finally:
        edited.write_text(original)
    everything = set(run(["dvc", "stage", "list", "--name-only"], pipeline).stdout.split())
    assert changed == (everything if expected == "every stage" else expected)


def test_python_bytecode_under_src_changes_no_stage(pipeline):
    """Importing the library writes __pycache__ folders into the stages' dependency folders: .dvcignore keeps them
    out of the hashes, or every run and every checkout would change the cache key."""
    cache = pipeline / "src/edgecompress/core/__pycache__"
    cache.mkdir(exist_ok=True)
    stray = cache / "stray.cpython-311.pyc"
    stray.write_bytes(b"compiled")
    try:
        assert "up to date" in run(["dvc", "status"], pipeline).stdout
    finally:
        stray.unlink()


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


CHAIN = {"chain_filtered": "{method: filter_prune, from: baseline, with: {ratio: 0.25}}",
         "chain_pruned": "{method: prune, from: chain_filtered, with: {final_sparsity: 0.5}}",
         "chain_pqat": "{method: pqat, from: chain_pruned}"}


def test_a_three_step_chain_is_params_lines_alone(pipeline, tmp_path):
    """Only params.yaml changes: the chain is trained, converted, evaluated and reported, and nothing else reruns;
    then one of its `with` values reruns that model's stage alone."""
    repo = tmp_path / "repo"
    shutil.copytree(pipeline, repo, symlinks=True)
    params = repo / "params.yaml"
    text = params.read_text()
    assert text.count("\nmodels:\n") == 1
    lines = "".join(f"  {name}: {entry}\n" for name, entry in CHAIN.items())
    params.write_text(text.replace("\nmodels:\n", "\nmodels:\n" + lines))
    ran = set(re.findall(r"Running stage '([^']+)'", run(["dvc", "repro"], repo).stdout))
    assert ran == {f"{kind}@{m}" for m in CHAIN for kind in ("compress", "convert", "evaluate")} | {"report"}
    record = json.loads((repo / "models/chain_pqat/train.json").read_text())
    assert record["source"] == "chain_pruned" and record["quantization_aware"]
    assert abs(metrics_of(repo, "chain_pqat")["int8"]["sparsity"] - 0.5) <= 0.05  # the pruned zeros kept
    assert metrics_of(repo, "chain_filtered")["params_count"] < metrics_of(repo, "baseline")["params_count"]
    all_models = (repo / "report/report.md").read_text().split("## All models\n", 1)[1]
    assert f"| chain_pqat | int8 | {metrics_of(repo, 'chain_pqat')['int8']['accuracy']:.4f} |" in all_models
    set_param(repo, "models.chain_pruned.with.final_sparsity", 0.6)
    assert set(json.loads(run(["dvc", "status", "--json"], repo).stdout)) == {"compress@chain_pruned"}


def test_a_refused_value_then_the_old_one_trains_nothing(pipeline, tmp_path):
    """DVC removes a stage's outputs before its command refuses a value; with the value restored, the run cache
    brings them back instead of training again, and nothing downstream reruns (train.json holds no timings)."""
    repo = tmp_path / "repo"
    shutil.copytree(pipeline, repo, symlinks=True)
    original = set_param(repo, "prune.final_sparsity", 1.5)
    refused = run(["dvc", "repro"], repo, check=False)
    assert refused.returncode != 0 and "prune.final_sparsity = 1.5 is not allowed" in refused.stderr + refused.stdout
    assert not (repo / "models/pruned/model").exists()
    (repo / "params.yaml").write_text(original)
    log = run(["dvc", "repro"], repo).stdout
    assert not re.findall(r"Running stage '((?:compress|convert)[^']*|train|distill|prepare)'", log), log
    assert "Stage 'compress@pruned' is cached - skipping run, checking out outputs" in log
    assert "up to date" in run(["dvc", "status"], repo).stdout

