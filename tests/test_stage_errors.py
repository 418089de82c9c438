"""Bad params stop a stage before any work: one line naming key, value and what is allowed; exit 2; no output."""
import pytest

from conftest import ROOT, run, write_params

CASES = [
    ("prepare.py", [], {"data": {"source": "imagenet"}}, ["data.source", "'imagenet'", "digits"], "data"),
    ("prepare.py", [], {"data": {"image_size": 16}}, ["data.image_size", "16", ">= 32"], "data"),
    ("train.py", [], {"train": {"epochs": 0}}, ["train.epochs", "0", ">= 1"], "models"),
    ("convert.py", ["baseline"], {"convert": {"quantizations": ["fp32", "int4"]}},
     ["convert.quantizations", "int4", "fp32, fp16, dynamic, int8, int16x8"], "models"),
    ("evaluate.py", ["baseline"], {"evaluate": {"threads": 0}}, ["evaluate.threads", ">= 1"], "metrics"),
    ("evaluate.py", ["baseline"], {"evaluate": {"runs": 0}}, ["evaluate.runs", ">= 1"], "metrics"),
    ("evaluate.py", ["baseline"], {"evaluate": {"device": "-oProxyCommand=x"}},
     ["evaluate.device", "'-oProxyCommand=x'", "an ssh destination"], "metrics"),
    ("evaluate.py", ["baseline"], {"evaluate": {"ssh_options": "-F cfg"}}, ["evaluate.ssh_options", "a list"],
     "metrics"),
    ("prepare.py", [], {"data": {"source": "folder", "path": ""}}, ["data.path", "''", "a non-empty path"], "data"),
    ("prepare.py", [], {"data": {"limit_per_class": -1}}, ["data.limit_per_class", "-1", ">= 0"], "data"),
    ("prepare.py", [], {"data": {"source": "folder", "path": "no/such/folder"}},
     ["data.path: no/such/folder is not a folder"], "data"),
    ("train.py", [], {"train": {"epocs": 3}}, ["train.epocs is not a known key"], "models"),
    ("prune.py", [], {"prune": {"final_sparsity": 1.0}}, ["prune.final_sparsity", "1.0", "[0, 1)"], "models"),
    ("prune.py", [], {"prune": {"schedule": "cubic"}},
     ["prune.schedule", "'cubic'", "polynomial_decay, constant_sparsity"], "models"),
    ("cluster.py", ["kpp32"], {"cluster": {"variants": {"kpp32": {"clusters": 1}}}},
     ["cluster.variants.kpp32.clusters", "1", ">= 2"], "models"),
    ("cluster.py", ["kpp32"], {"cluster": {"variants": {"kpp32": {"init": "kmeans"}}}},
     ["cluster.variants.kpp32.init", "'kmeans'", "kmeans_plus_plus, linear, random, density_based"], "models"),
    ("cluster_sparse.py", [], {"pcqat": {"clusters": 0}}, ["pcqat.clusters", "0", ">= 2"], "models"),
    ("qat.py", ["pcqat"], {"pcqat": {"init": "kmeans"}}, ["pcqat.init", "'kmeans'"], "models"),
    ("qat.py", ["qat"], {"qat": {"learning_rate": -1}}, ["qat.learning_rate", "-1", "(0, 1]"], "models"),
    ("distill.py", [], {"distill": {"alpha": 1.5}}, ["distill.alpha", "1.5", "[0, 1]"], "models"),
    ("distill.py", [], {"distill": {"temperature": 0}}, ["distill.temperature", "0", "(0, 1000]"], "models"),
    ("distill.py", [], {"distill": {"student": "vgg16"}}, ["distill.student", "'vgg16'", "mobilenetv2, resnet18"],
     "models"),
    ("train_student.py", [], {"distill": {"input_size": 16}}, ["distill.input_size", "16", ">= 32"], "models"),
    ("report.py", [], {"report": {"budgets": {"tiny": {"max_gzip_kb": -1}}}},
     ["report.budgets.tiny.max_gzip_kb", "-1", "(0, inf]"], "metrics"),
    ("report.py", [], {"report": {"budgets": {"tiny": {"max_kb": 50}}}},
     ["report.budgets.tiny.max_kb is not a known key", "max_gzip_kb"], "metrics"),
    ("report.py", [], {"report": {"budgets": {"fast": {"prefer": "size"}}}},
     ["report.budgets.fast.prefer", "'size'", "accuracy, gzip, latency"], "metrics"),
    ("report.py", [], {"report": {"highlight": "cheap"}}, ["report.highlight", "'cheap'", "tiny, fast, accurate"],
     "metrics"),
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


@pytest.mark.parametrize("script, args", [("convert.py", ["baseline"]), ("prune.py", []), ("qat.py", ["pcqat"])])
def test_missing_upstream_model_is_one_clear_line(tmp_path, script, args):
    write_params(tmp_path)
    result = run(["python", str(ROOT / "stages" / script), *args], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: models/")
    assert "train.json is missing; run the stage that writes it first" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def saved_baseline(tmp_path_factory):
    """A folder holding only models/baseline: an untrained tiny ResNet18 and its record."""
    from edgecompress import models, training
    from edgecompress.files import write_json

    root = tmp_path_factory.mktemp("baseline")
    model = models.build("resnet18", (32, 32, 1), 10, 0.125)
    training.save(model, root / "models/baseline/model")
    write_json(root / "models/baseline/train.json", {"params_count": model.count_params()})
    return root


@pytest.mark.parametrize("script, args, section", [("prune.py", [], "prune"), ("cluster.py", ["kpp32"], "cluster")])
def test_unknown_skip_layer_stops_before_training(saved_baseline, script, args, section):
    write_params(saved_baseline, {section: {"skip_layers": ["stem_conv", "conv9"]}})
    result = run(["python", str(ROOT / "stages" / script), *args], saved_baseline, check=False)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # after TF's import banner
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr
    assert errors[0].startswith(f"error: params: {section}.skip_layers names 'conv9', which is not a layer")
    assert "stage1_block1_a_conv" in errors[0]  # what is allowed
    assert sorted(p.name for p in (saved_baseline / "models").iterdir()) == ["baseline"]
