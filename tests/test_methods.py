"""The one interface of every compression method: what it wraps, what it records, what it saves."""
import json

import numpy as np
import pytest

from conftest import ROOT, on_disk
from edgecompress import methods
from edgecompress.train import models, runs
from edgecompress.data import streams
from test_models_and_training import tiny_splits
from edgecompress.core import params
from edgecompress.core.errors import UserError
from edgecompress.core.record import TrainingRecord

FINE_TUNING = {"epochs": 1, "learning_rate": 0.001, "augment": params.UPSTREAM_AUGMENT}
PRUNE = {**FINE_TUNING, "schedule": "polynomial_decay", "initial_sparsity": 0.0, "final_sparsity": 0.5,
         "begin_step": 0, "end_step": "auto", "frequency": 1, "skip_layers": ["stem_conv", "logits"]}
CLUSTER = {**FINE_TUNING, "skip_layers": ["first", "last"], "clusters": 4, "init": "linear"}
TRAIN = {"optimizer": "adam", "batch_size": 8}
DAMAGE_POINTS = 3


def baseline():
    return models.build("resnet18", (32, 32, 1), 4, 0.125)


def wrapped(model, wrapper: str):
    """Names of the layers TFMOT wrapped in `wrapper` (its wrapper classes are not exported)."""
    return sorted(layer.layer.name for layer in model.layers if type(layer).__name__ == wrapper)


def test_prune_wraps_every_conv_and_dense_but_the_skipped_and_strips_them(tmp_path):
    method = methods.create("prune", PRUNE)
    model = method.apply(baseline(), TrainingRecord(1, 1, 0), steps=10)
    pruned = wrapped(model, "PruneLowMagnitude")
    assert len(pruned) == 19 and "stem_conv" not in pruned and "logits" not in pruned
    assert sorted(method.properties()["pruned_layers"]) == pruned
    assert [c.__class__.__name__ for c in method.callbacks()] == ["UpdatePruningStep"]
    split = on_disk(tmp_path, {"train": (np.zeros((8, 32, 32, 1), np.uint8), np.zeros(8, np.int64))})["train"]
    assert wrapped(method.finish(model, streams.images(split, batch_size=8)), "PruneLowMagnitude") == []


def test_cluster_sparse_clusters_exactly_the_upstream_pruned_layers():
    upstream = TrainingRecord(1, 1, 0, pruned_layers=("stage1_block1_a_conv", "stage4_block2_b_conv"))
    method = methods.create("cluster_sparse", {**FINE_TUNING, "clusters": 4, "init": "kmeans_plus_plus"})
    model = method.apply(baseline(), upstream, steps=10)
    clustered = wrapped(model, "ClusterWeights")
    assert clustered == sorted(upstream.pruned_layers)
    assert method.properties() == {"clustered_layers": list(upstream.pruned_layers), "clusters": 4,
                              "pruned_layers": list(upstream.pruned_layers), "unsupported_layers": []}


def test_qat_carries_what_its_upstream_made_and_is_quantization_aware():
    upstream = TrainingRecord(1, 1, 0, pruned_layers=("a",), clustered_layers=("a",), clusters=8,
                              unsupported_layers=("b (PReLU)",))
    method = methods.create("pcqat", FINE_TUNING)
    model = method.apply(baseline(), upstream, steps=10)
    assert wrapped(model, "QuantizeWrapperV2")
    assert method.properties() == {"quantization_aware": True, "pruned_layers": ("a",), "clustered_layers": ("a",),
                              "clusters": 8, "unsupported_layers": ("b (PReLU)",)}


def test_compress_fine_tunes_and_saves_model_record_and_curve(tmp_path, monkeypatch):
    """runs.compress: the generic stage's whole recipe, on a tiny baseline and four classes."""
    monkeypatch.chdir(tmp_path)
    tiny_splits(tmp_path / "data")
    model = baseline()
    runs.save("models/baseline", model, {"epochs": 1, "best_epoch": 1,
                                         "history": [{"epoch": 1, "loss": 1.0}]})
    method = methods.create("cluster", CLUSTER)
    runs.compress(method, "models/baseline", "models/clustered_lin4", "data", TRAIN, 0, DAMAGE_POINTS)

    record = TrainingRecord.read("models/clustered_lin4/train.json")
    saved = models.load("models/clustered_lin4/model")
    assert record.source == "baseline" and record.clusters == 4 and len(record.clustered_layers) == 19
    assert record.skipped_layers == ("stem_conv", "logits")  # `first` and `last`, by their names in this model
    assert record.augment is None  # as its upstream's record says: no augmentation
    assert 0 <= record.upstream_val_accuracy <= 1 and 0 <= record.val_accuracy <= 1
    assert record.params_count == models.count_parameters(saved) == model.count_params()
    assert record.epochs == 1
    kernel = saved.get_layer("stage2_block1_a_conv").get_weights()[0]
    assert len(np.unique(kernel[..., 0])) <= 4  # stripped: plain layers holding only centroid values
    lines = (tmp_path / "plots/train/clustered_lin4.csv").read_text().splitlines()
    assert lines[0].split(",")[:2] == ["epoch", "loss"] and lines[0].endswith(",seconds") and len(lines) == 2
    assert float(lines[1].split(",")[-1]) > 0  # the epoch's timing lives in the curve, not in the model's record


def test_filter_pruning_in_rounds_then_distillation_with_auto_weights(tmp_path, monkeypatch):
    """Paper 004's chain through runs.compress: two prune-and-fine-tune rounds, then formula 7's probes."""
    monkeypatch.chdir(tmp_path)
    tiny_splits(tmp_path / "data")
    runs.save("models/baseline", baseline(), {"epochs": 1, "best_epoch": 1, "history": []})
    prune = methods.create("filter_prune", {**FINE_TUNING, "criterion": "fpgm", "ratio": 0.75, "steps": 2,
                                            "skip_layers": []})
    runs.compress(prune, "models/baseline", "models/filter_pruned", "data", TRAIN, 0, DAMAGE_POINTS)
    distill = methods.create("filter_prune_kd", {**FINE_TUNING, "alpha": "auto", "probe_epochs": 1,
                                                 "temperature": 4})
    distill.use_teacher(runs.load("models/baseline")[0], "baseline")
    runs.compress(distill, "models/filter_pruned", "models/filter_pruned_kd", "data", TRAIN, 0, DAMAGE_POINTS)

    base, pruned = (TrainingRecord.read(f"models/{m}/train.json") for m in ("baseline", "filter_pruned"))
    assert pruned.epochs == 2 and len((tmp_path / "plots/train/filter_pruned.csv").read_text().splitlines()) == 3
    assert pruned.macs < 0.2 * base.macs and pruned.params_count < 0.2 * base.params_count
    assert all(g["kept"] == g["filters"] // 4 for g in pruned.facts["groups"] if not g["whole"])  # a quarter kept
    assert pruned.method == "filter_prune"
    kd = TrainingRecord.read("models/filter_pruned_kd/train.json")
    weights = kd.facts
    assert kd.teacher == "baseline" and kd.macs == pruned.macs
    assert weights["labels"] + weights["teacher"] == pytest.approx(1)
    assert weights["labels"] == pytest.approx(methods.knowledge_distillation.allocate(weights["gain_labels"],
                                                                                    weights["gain_teacher"]))
    assert 0 <= weights["untrained_accuracy"] <= 1


def test_a_record_round_trips_through_its_file(tmp_path):
    record = TrainingRecord(epochs=2, best_epoch=2, params_count=100, source="baseline", pruned_layers=("a", "b"),
                            method="prune", facts={"note": 1})
    record.write(tmp_path / "train.json")
    assert json.loads((tmp_path / "train.json").read_text())["pruned_layers"] == ["a", "b"]
    assert TrainingRecord.read(tmp_path / "train.json") == record
    (tmp_path / "old.json").write_text(json.dumps({**json.loads((tmp_path / "train.json").read_text()), "loss": 1}))
    with pytest.raises(UserError, match=r"old.json has fields a training record does not have \(loss\); rerun"):
        TrainingRecord.read(tmp_path / "old.json")


@pytest.mark.parametrize("name", sorted(methods.METHODS))
def test_every_method_has_the_fine_tuning_settings_and_fine_tunes_by_them(name):
    assert {"epochs", "learning_rate"} <= set(methods.RULES[name].model_fields)
    section = params.load(name, path=ROOT / "params.yaml", schemas=methods.RULES)[name]
    method = methods.create(name, {**section, **FINE_TUNING})
    assert (method.epochs, method.learning_rate, method.name) == (1, 0.001, name)


def test_qat_names_the_layer_it_cannot_quantize():
    inputs = models.keras.Input((8, 8, 1))
    hidden = models.layers.PReLU(name="prelu")(models.layers.Conv2D(4, 3, name="conv")(inputs))
    logits = models.layers.Dense(2, name="logits")(models.layers.Flatten()(hidden))
    model = models.keras.Model(inputs, models.layers.Activation("softmax")(logits), name="mine")
    with pytest.raises(UserError, match=r"^QAT cannot quantize layer 'prelu' \(PReLU\) of mine; "):
        methods.create("qat", FINE_TUNING).apply(model, TrainingRecord(1, 1, 0), steps=1)


def test_structured_sparsity_leaves_m_zeros_in_every_n_input_weights_of_the_int8_file(tmp_path, monkeypatch):
    """prune_m_by_n fine-tuned on a tiny baseline and converted: the kernels read back from the .tflite itself."""
    from edgecompress import convert
    from edgecompress.measure import tflite_weights

    monkeypatch.chdir(tmp_path)
    tiny_splits(tmp_path / "data")
    runs.save("models/baseline", baseline(), {"epochs": 1, "best_epoch": 1, "history": []})
    settings = {**FINE_TUNING, "m_by_n": [2, 4], "skip_layers": ["stem_conv", "logits"]}
    runs.compress(methods.create("prune_m_by_n", settings), "models/baseline", "models/pruned_2by4", "data", TRAIN,
                  0, DAMAGE_POINTS)
    record = TrainingRecord.read("models/pruned_2by4/train.json")
    assert len(record.pruned_layers) == 19
    convert.convert_model("models/pruned_2by4", record, ["int8"], tmp_path / "data/train", 8, 0)
    kernels = dict(tflite_weights.kernels(tmp_path / "models/pruned_2by4/tflite/int8.tflite"))
    for name in record.pruned_layers:
        groups = kernels[name].reshape(-1, 4)  # TF Lite's [out, h, w, in]: runs of 4 along the input channels
        assert groups.dtype.name == "int8" and ((groups == 0).sum(axis=1) >= 2).all(), name
    assert ((kernels["stem_conv"] == 0).mean()) < 0.5  # skipped: dense


def test_clustering_leaves_whole_a_layer_with_fewer_weights_than_clusters():
    """TFMOT's k-means++ cannot seed more centroids than a kernel has (non-zero) weights: such a layer stays as it is
    and is listed, instead of a crash (a pruned 4-filter projection of a tiny filter-pruned model has a handful)."""
    model, name = baseline(), "stage2_block1_down_conv"
    kernel = model.get_layer(name).kernel
    sparse = np.zeros(kernel.shape, np.float32)
    sparse.flat[:5] = np.arange(1, 6)  # 5 non-zero weights
    kernel.assign(sparse)
    upstream = TrainingRecord(1, 1, 0, pruned_layers=(name, "stage4_block2_b_conv"))
    method = methods.create("cluster_sparse", {**FINE_TUNING, "clusters": 8, "init": "kmeans_plus_plus"})
    method.apply(model, upstream, steps=10)
    assert method.properties()["clustered_layers"] == ["stage4_block2_b_conv"]
    assert method.properties()["unsupported_layers"] == [f"{name} (5 weights for 8 clusters)"]
