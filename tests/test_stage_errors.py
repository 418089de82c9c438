"""Bad params stop a stage before any work: one line naming key, value and what is allowed; exit 2; no output."""
import numpy as np
import pytest

from conftest import ROOT, run, write_params

PREPARE = ("prepare.py", ["data"])
TRAIN = ("train.py", ["data", "models/baseline"])
CONVERT = ("convert.py", ["data", "models/baseline"])
EVALUATE = ("evaluate.py", ["data", "models/baseline", "models/baseline", "metrics"])
DISTILL = ("distill.py", ["data", "models/baseline", "models/student_distilled"])
TRAIN_STUDENT = ("train_student.py", ["data", "models/student_scratch"])
DISTILL_ATTENTION = ("distill_attention.py", ["data", "models/baseline", "models/student_attention"])
REPORT = ("report.py", ["metrics", "plots/train", "data/test", "search", "report"])


def compress(model, source="baseline"):
    """The compress stage of params.yaml's `models.<model>`, from the model `source`."""
    return "compress.py", ["data", f"models/{source}", f"models/{model}"]


LOWRES = {"method": "downscale", "from": "baseline", "teacher": "baseline"}  # a models entry the defaults lack

CASES = [
    (*PREPARE, {"data": {"source": "imagenet"}}, ["data.source", "'imagenet'", "digits"], "data"),
    (*PREPARE, {"data": {"image_size": 16}}, ["data.image_size", "16", ">= 32"], "data"),
    (*TRAIN, {"train": {"epochs": 0}}, ["train.epochs", "0", "train.architecture resnet18", "at least 1"], "models"),
    (*TRAIN, {"train": {"architecture": "file"}}, ["train.model_file", "placeholder", ".keras file"], "models"),
    (*TRAIN, {"train": {"architecture": "resnet99"}}, ["train.architecture", "'resnet99'", "resnet18", "file"],
     "models"),
    (*CONVERT, {"convert": {"quantizations": ["fp32", "int4"]}},
     ["convert.quantizations", "int4", "fp32, fp16, dynamic, int8, int16x8"], "models"),
    (*EVALUATE, {"evaluate": {"threads": 0}}, ["evaluate.threads", ">= 1"], "metrics"),
    (*EVALUATE, {"evaluate": {"runs": 0}}, ["evaluate.runs", ">= 1"], "metrics"),
    (*EVALUATE, {"evaluate": {"device": "-oProxyCommand=x"}},
     ["evaluate.device", "'-oProxyCommand=x'", "an ssh destination"], "metrics"),
    (*EVALUATE, {"evaluate": {"ssh_options": "-F cfg"}}, ["evaluate.ssh_options", "a list"], "metrics"),
    (*EVALUATE, {"evaluate": {"micro": ["int8", "int4"]}},
     ["evaluate.micro", "int4", "a list of distinct names from fp32, fp16, dynamic, int8, int16x8"], "metrics"),
    (*PREPARE, {"data": {"source": "folder", "path": ""}}, ["data.path", "''", "a non-empty path"], "data"),
    (*PREPARE, {"data": {"limit_per_class": -1}}, ["data.limit_per_class", "-1", ">= 0"], "data"),
    (*PREPARE, {"data": {"source": "folder", "path": "no/such/folder"}},
     ["data.path: no/such/folder is not a folder"], "data"),
    (*TRAIN, {"train": {"epocs": 3}}, ["train.epocs is not a known key"], "models"),
    (*TRAIN, {"train": {"mixed_precision": True}}, ["train.mixed_precision = true", "sees no GPU", "false"], "models"),
    (*TRAIN, {"train": {"distribute": "horovod"}}, ["train.distribute", "'horovod'", "none, mirrored, multi_worker"],
     "models"),
    (*TRAIN, {"train": {"distribute": "multi_worker"}}, ["'multi_worker' needs TF_CONFIG", '"worker"'], "models"),
    (*compress("pruned"), {"prune": {"final_sparsity": 1.0}},
     ["prune.final_sparsity", "1.0", "[0, 1)"], "models"),
    (*compress("pruned"), {"prune": {"schedule": "cubic"}},
     ["prune.schedule", "'cubic'", "polynomial_decay, constant_sparsity"], "models"),
    (*compress("clustered_kpp32"), {"cluster": {"clusters": 1}}, ["cluster.clusters", "1", ">= 2"], "models"),
    (*compress("clustered_kpp256"), {"models": {"clustered_kpp256": {"with": {"clusters": 1}}}},
     ["models.clustered_kpp256.with.clusters", "1", ">= 2"], "models"),
    (*compress("clustered_kpp32"), {"cluster": {"init": "kmeans"}},
     ["cluster.init", "'kmeans'", "kmeans_plus_plus, linear, random, density_based"], "models"),
    (*compress("clustered_kpp8"), {}, ["models has no 'clustered_kpp8'", "pruned, cluster_sparse"], "models"),
    (*compress("qat"), {"models": {"qat": {"with": {"clusters": 4}}}},
     ["models.qat.with.clusters is not a setting of qat", "epochs, learning_rate"], "models"),
    (*compress("cluster_sparse", "pruned"), {"cluster_sparse": {"clusters": 0}},
     ["cluster_sparse.clusters", "0", ">= 2"], "models"),
    (*compress("pcqat", "cluster_sparse"), {"pcqat": {"clusters": 16}},  # the sparse chain's clusters moved out
     ["pcqat.clusters is not a known key", "epochs, learning_rate"], "models"),
    (*compress("qat"), {"qat": {"learning_rate": -1}}, ["qat.learning_rate", "-1", "(0, 1]"], "models"),
    (*compress("odd"), {"models": {"odd": {"method": "data", "from": "baseline"}}},
     ["models.odd.method = 'data' is not allowed", "expected a method: ", "prune", "filter_prune_kd"], "models"),
    (*compress("odd", "nowhere"), {"models": {"odd": {"method": "prune", "from": "nowhere"}}},
     ["models.odd.from = 'nowhere' is not allowed; expected a model: baseline", "pruned"], "models"),
    (*compress("pruned", "pqat"), {"models": {"pruned": {"from": "pqat"}}},
     ["models.", "the chain comes back to", "pruned <- pqat <- pruned"], "models"),
    (*compress("qat"), {"models": {"qat": {"teacher": "baseline"}}},
     ["models.qat.teacher = 'baseline' is not allowed; qat learns from no teacher"], "models"),
    (*compress("odd", "filter_pruned"), {"models": {"odd": {"method": "filter_prune_kd", "from": "filter_pruned"}}},
     ["models.odd has no teacher; filter_prune_kd learns from one"], "models"),
    (*compress("pruned"), {"models": {"pruned": {"with": {"initial_sparsity": 0.9}}}},
     ["models.pruned.with.initial_sparsity = 0.9 is not allowed; expected at most prune.final_sparsity (0.8)"],
     "models"),
    (*compress("odd"), {"models": {"odd": {"method": ["prune"], "from": "baseline"}}},
     ["models.odd = {'method': ['prune'], 'from': 'baseline'} is not allowed; expected {method: NAME"], "models"),
    (*compress("qat"), {"models": {"qat": {"teacher": "pruned"}}},
     ["models.qat.teacher = 'pruned' is not allowed; expected a model it comes from: baseline"], "models"),
    (*compress("filter_pruned"), {"filter_prune": {"ratio": 1.0}},
     ["filter_prune.ratio", "1.0", "(0, 1)"], "models"),
    (*compress("filter_pruned"), {"filter_prune": {"ratio": 0}},
     ["filter_prune.ratio", "0", "(0, 1)"], "models"),
    (*compress("filter_pruned"), {"filter_prune": {"criterion": "l3"}},
     ["filter_prune.criterion", "'l3'", "fpgm, l1, l2"], "models"),
    (*compress("filter_pruned_kd", "filter_pruned"),
     {"filter_prune_kd": {"alpha": 1.5}}, ["filter_prune_kd.alpha", "1.5", "auto", "[0, 1]"], "models"),
    (*compress("block_pruned", "filter_pruned_kd"), {"block_prune": {"shortcuts": "all"}},
     ["block_prune.shortcuts", "'all'", "identity, any"], "models"),
    (*compress("block_pruned", "filter_pruned_kd"), {"models": {"block_pruned": {"with": {"blocks": 0}}}},
     ["models.block_pruned.with.blocks", "0", ">= 1"], "models"),
    (*compress("lowres"), {"models": {"lowres": {**LOWRES, "with": {"input_size": 0}}}},
     ["models.lowres.with.input_size", "0", ">= 1"], "models"),
    (*DISTILL, {"distill": {"alpha": 1.5}}, ["distill.alpha", "1.5", "[0, 1]"], "models"),
    (*DISTILL, {"distill": {"temperature": 0}}, ["distill.temperature", "0", "(0, 1000]"], "models"),
    (*DISTILL, {"distill": {"student": "alexnet"}}, ["distill.student", "'alexnet'", "resnet18, resnet20, resnet32"],
     "models"),
    (*TRAIN_STUDENT, {"distill": {"input_size": 16}}, ["distill.input_size", "16", ">= 32"], "models"),
    (*DISTILL_ATTENTION, {"distill_attention": {"beta": -1}}, ["distill_attention.beta", "-1", "[0, inf]"], "models"),
    (*DISTILL_ATTENTION, {"distill_attention": {"kd_weight": "high"}}, ["distill_attention.kd_weight", "'high'"],
     "models"),
    (*compress("lowrank"), {"lowrank": {"energy": 0}}, ["lowrank.energy", "0", "null or a number in (0, 1]"], "models"),
    (*compress("lowrank"), {"lowrank": {"energy": 1.5}}, ["lowrank.energy", "1.5", "(0, 1]"], "models"),
    (*compress("lowrank"), {"lowrank": {"energy": None, "rank_ratio": 0}}, ["lowrank.rank_ratio", "0", "(0, 1]"],
     "models"),
    (*compress("lowrank"), {"lowrank": {"energy": None, "rank_ratio": 2}}, ["lowrank.rank_ratio", "2", "(0, 1]"],
     "models"),
    (*compress("lowrank"), {"lowrank": {"energy": 0.9, "rank_ratio": 0.5}},
     ["lowrank.energy = 0.9 and lowrank.rank_ratio = 0.5", "exactly one of them set"], "models"),
    (*compress("lowrank"), {"lowrank": {"energy": None}},
     ["lowrank.energy = None and lowrank.rank_ratio = None", "exactly one of them set"], "models"),
    (*REPORT, {"report": {"budgets": {"tiny": {"max_gzip_kb": -1}}}},
     ["report.budgets.tiny.max_gzip_kb", "-1", "(0, inf]"], "report"),
    (*REPORT, {"report": {"budgets": {"tiny": {"max_kb": 50}}}},
     ["report.budgets.tiny.max_kb is not a known key", "max_gzip_kb"], "report"),
    (*REPORT, {"report": {"budgets": {"fast": {"prefer": "size"}}}},
     ["report.budgets.fast.prefer", "'size'", "accuracy, gzip, latency"], "report"),
    (*REPORT, {"report": {"highlight": "cheap"}}, ["report.highlight", "'cheap'", "tiny, mcu, fast, accurate"],
     "report"),
    (*REPORT, {"report": {"class_drop_points": 0}}, ["report.class_drop_points", "0", "(0, 100]"], "report"),
    (*REPORT, {"report": {"forgotten_images": 2.5}}, ["report.forgotten_images", "2.5", ">= 0"], "report"),
]


@pytest.mark.parametrize("script, args, override, words, output_dir", CASES)
def test_bad_param_is_one_clear_line(tmp_path, script, args, override, words, output_dir):
    write_params(tmp_path, override)
    result = run(["python", str(ROOT / "stages" / script), *args], tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / output_dir).exists()


def test_a_wrong_number_of_arguments_prints_the_usage(tmp_path):
    result = run(["python", str(ROOT / "stages/compress.py"), "data"], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"usage: python {ROOT / 'stages/compress.py'} DATA_DIR SOURCE_DIR MODEL_DIR"


@pytest.mark.parametrize("script, args", [CONVERT, compress("pruned"),
                                          compress("pcqat", "cluster_sparse")])
def test_missing_upstream_model_is_one_clear_line(tmp_path, script, args):
    write_params(tmp_path)
    result = run(["python", str(ROOT / "stages" / script), *args], tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: models/"), result.stderr
    assert "train.json is missing; run the stage that writes it first" in lines[0]


@pytest.fixture(scope="module")
def saved_baseline(tmp_path_factory):
    """A folder holding data splits and models/baseline: an untrained tiny ResNet18 and its record."""
    from edgecompress import data
    from edgecompress.train import models, training
    from edgecompress.core.record import TrainingRecord

    root = tmp_path_factory.mktemp("baseline")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        data.write_split(root / f"data/{split}", rng.integers(0, 256, (20, 32, 32, 1), np.uint8), np.arange(20) % 10,
                         shard_bytes=2**20)
    model = models.build("resnet18", (32, 32, 1), 10, 0.125)
    training.save(model, root / "models/baseline/model")
    TrainingRecord(epochs=1, best_epoch=1, params_count=model.count_params()).write(
        root / "models/baseline/train.json")
    return root


@pytest.mark.parametrize("script, args, section", [(*compress("pruned"), "prune"),
                                                   (*compress("clustered_kpp32"), "cluster"),
                                                   (*compress("lowrank"), "lowrank")])
def test_unknown_skip_layer_stops_before_training(saved_baseline, script, args, section):
    write_params(saved_baseline, {section: {"skip_layers": ["stem_conv", "conv9"]}})
    result = run(["python", str(ROOT / "stages" / script), *args], saved_baseline, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()  # TensorFlow's start-up lines are filtered out
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: params: {section}.skip_layers names 'conv9', which is not a layer")
    assert "stage1_block1_a_conv" in lines[0]  # what is allowed
    assert sorted(p.name for p in (saved_baseline / "models").iterdir()) == ["baseline"]
    assert not (saved_baseline / "plots").exists()


def test_an_input_size_above_the_upstream_models_stops_before_training(saved_baseline):
    write_params(saved_baseline, {"models": {"lowres": {**LOWRES, "with": {"input_size": 48}}}})
    result = run(["python", str(ROOT / "stages/compress.py"), *compress("lowres")[1]], saved_baseline, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: params: models.lowres.with.input_size = 48 is not allowed; the upstream model sees 32x32 images; "
        "expected at most 32"]
    assert sorted(p.name for p in (saved_baseline / "models").iterdir()) == ["baseline"]


def test_a_filter_ratio_that_empties_a_layer_stops_before_training(saved_baseline):
    write_params(saved_baseline, {"filter_prune": {"ratio": 0.95}})  # the tiny ResNet18's layers have 8 filters
    result = run(["python", str(ROOT / "stages/compress.py"), *compress("filter_pruned")[1]],
                 saved_baseline, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: params: filter_prune.ratio = 0.95 is not allowed; it would leave ")
    assert "with no filter of its 8; expected a ratio below 0.938" in lines[0]
    assert sorted(p.name for p in (saved_baseline / "models").iterdir()) == ["baseline"]


def test_a_teacher_without_stages_to_pair_stops_attention_transfer(tmp_path):
    """A dense-only teacher has no attention map: one line naming it, nothing written."""
    from edgecompress import data
    from edgecompress.train import training
    from edgecompress.core.backend import keras
    from edgecompress.core.files import write_json
    from edgecompress.core.record import TrainingRecord

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        data.write_split(tmp_path / f"data/{split}", rng.integers(0, 256, (20, 32, 32, 1), np.uint8),
                         np.arange(20) % 10, shard_bytes=2**20)
    write_json(tmp_path / "data/dataset.json", {"image_shape": [32, 32, 1], "classes": [str(i) for i in range(10)]})
    image = keras.Input((32, 32, 1))
    logits = keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(image))
    teacher = keras.Model(image, keras.layers.Activation("softmax")(logits), name="mlp")
    training.save(teacher, tmp_path / "models/baseline/model")
    TrainingRecord(epochs=1, best_epoch=1, params_count=teacher.count_params()).write(
        tmp_path / "models/baseline/train.json")
    write_params(tmp_path)
    result = run(["python", str(ROOT / "stages" / DISTILL_ATTENTION[0]), *DISTILL_ATTENTION[1]], tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: attention transfer: mlp has no convolutional stage"), lines[0]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["baseline"]
    assert not (tmp_path / "plots").exists()
