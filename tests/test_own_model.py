"""The user's own trained model as the baseline: three file formats, the head and input it is given, every stage
run on it, and the bad model files, each refused in one line."""
import json
import runpy

import numpy as np
import pytest
import yaml

from conftest import ROOT, read_split, run, write_params
from edgecompress.train import baseline, training
from edgecompress import data
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError

SHAPE, CLASSES, INPUT_RANGE = (32, 32, 1), 10, (-1, 1)
FORMATS = ("mine.keras", "mine.h5", "mine_savedmodel")
IN_PROCESS = {"threads": 0}  # the stages run in this process, whose TensorFlow has already started its pools


def user_model(input_shape=SHAPE, head_activation="softmax"):
    """A functional model as a user writes one: separable convolutions, a residual add, dropout, a softmax head."""
    inputs = keras.Input(input_shape, name="pixels")
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv")(inputs)
    y = keras.layers.SeparableConv2D(16, 3, padding="same", activation="relu", name="sep1")(x)
    y = keras.layers.SeparableConv2D(16, 3, padding="same", name="sep2")(y)
    x = keras.layers.ReLU(name="relu")(keras.layers.Add(name="residual")([x, y]))
    x = keras.layers.Dropout(0.2, name="drop")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    return keras.Model(inputs, keras.layers.Dense(CLASSES, activation=head_activation, name="head")(x), name="mine")


def stage(name):
    """A stage script's main(), to run in this process (the DVC wiring is the end-to-end test's)."""
    return runpy.run_path(str(ROOT / "stages" / f"{name}.py"))["main"]


def save_all(model, folder):
    """`model` saved in every format the train stage takes; {file name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in FORMATS}
    model.save(paths["mine.keras"])
    model.save(paths["mine.h5"])
    model.save(paths["mine_savedmodel"], save_format="tf")
    return paths


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A project folder with the digits prepared and the user's model, trained on them scaled to [-1, 1], saved
    in all three formats under imports/."""
    root = tmp_path_factory.mktemp("own_model")
    write_params(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        stage("prepare")("data")
    x, y = read_split(root / "data/train")
    training.seed_everything(0)
    model = user_model()
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(data.to_float(x, INPUT_RANGE), y, epochs=20, batch_size=32, verbose=0)
    save_all(model, root / "imports")
    return root


def probabilities(model, root):
    x = read_split(root / "data/test")[0]
    return model.predict(data.to_float(x, INPUT_RANGE), verbose=0)


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_becomes_the_same_baseline_with_a_separate_softmax(repo, name):
    reference = probabilities(keras.models.load_model(repo / "imports/mine.keras", compile=False), repo)
    loaded = baseline.load(repo / "imports" / name)
    baseline.check_contract(loaded, name, SHAPE, CLASSES)
    model = baseline.as_baseline(loaded, SHAPE)
    assert type(model.layers[-1]).__name__ == "Activation" and model.get_layer("head").activation.__name__ == "linear"
    np.testing.assert_allclose(probabilities(model, repo), reference, atol=1e-5)


def test_a_model_of_any_input_size_ending_in_logits_gets_a_fixed_input_and_a_softmax():
    model = user_model(input_shape=(None, None, 1), head_activation=None)
    fixed = baseline.as_baseline(model, SHAPE)
    assert fixed.input_shape == (None, *SHAPE) and fixed.layers[-1].name == "softmax"
    x = np.random.default_rng(0).random((4, *SHAPE), np.float32)
    np.testing.assert_allclose(fixed.predict(x, verbose=0), keras.activations.softmax(model(x)).numpy(), atol=1e-6)


def test_every_stage_runs_on_the_users_model_taken_as_it_is(repo, monkeypatch):
    """train (epochs 0), every method that applies, distillation from it, conversion, evaluation and the report."""
    write_params(repo, {
        "train": {"architecture": "file", "model_file": "imports/mine.keras", "epochs": 0, "input_range": [-1, 1],
                  **IN_PROCESS},
        "distill": {"input_size": 32}, "convert": {"quantizations": ["fp32", "int8"]},
    })
    monkeypatch.chdir(repo)
    stage("train")("data", "models/baseline")
    compress = stage("compress")
    graph = yaml.safe_load((repo / "params.yaml").read_text())["models"]  # the default graph, in params order
    for model, entry in graph.items():
        compress("data", f"models/{entry['from']}", f"models/{model}")
    stage("distill")("data", "models/baseline", "models/student_distilled")
    stage("distill_attention")("data", "models/baseline", "models/student_attention")
    models = ["baseline", "student_distilled", "student_attention", *graph]
    for model in models:
        stage("convert")("data", f"models/{model}")
        stage("evaluate")("data", f"models/{model}", "models/baseline", "metrics")
    stage("report")("metrics", "plots/train", "data/test", "search", "report")

    record = json.loads((repo / "models/baseline/train.json").read_text())
    assert record["architecture"] == "imports/mine.keras" and record["input_range"] == [-1, 1]
    assert record["epochs"] == 0
    pruned = json.loads((repo / "models/pruned/train.json").read_text())
    assert sorted(pruned["pruned_layers"]) == ["sep1", "sep2"] and pruned["input_range"] == [-1, 1]
    assert pruned["skipped_layers"] == ["conv", "head"]  # the default skip list, `first` and `last`, on this model
    assert pruned["augment"] == record["augment"] == {"flip": "none", "rotation": 0}  # train.model_file_augment
    assert json.loads((repo / "models/student_distilled/train.json").read_text())["teacher"] == "baseline"
    groups = json.loads((repo / "models/filter_pruned/train.json").read_text())["facts"]["groups"]
    assert {tuple(sorted(g["layers"])): g["kept"] for g in groups} == {("conv", "sep2"): 8, ("sep1",): 8, ("head",): 10}
    lowrank = json.loads((repo / "models/lowrank/train.json").read_text())
    assert [f["layer"] for f in lowrank["facts"]["factorized_layers"]] == ["conv", "head"]
    assert lowrank["unsupported_layers"] == ["sep1 (SeparableConv2D)", "sep2 (SeparableConv2D)"]
    pairs = json.loads((repo / "models/student_attention/train.json").read_text())["facts"]["pairs"]
    assert {p["teacher"] for p in pairs} == {"relu"}  # the user's model computes at one size: 16x16 after `conv`
    # the runner scales the test images as the model was trained: the fp32 file scores what Keras scores
    x, y = read_split(repo / "data/test")
    keras_accuracy = float((probabilities(keras.models.load_model(repo / "imports/mine.keras"), repo).argmax(1)
                            == y).mean())
    metrics = {m: json.loads((repo / f"metrics/{m}.json").read_text()) for m in models}
    assert keras_accuracy > 0.5
    assert abs(metrics["baseline"]["fp32"]["accuracy"] - keras_accuracy) <= 1 / len(y)
    # the reference run beside every model scales its pixels as the user's model wants: it agrees with itself
    assert metrics["baseline"]["fp32"]["flips_lost"] == metrics["baseline"]["fp32"]["flips_gained"] == 0
    assert metrics["baseline"]["int8"]["accuracy"] > 0.5
    assert all(metrics[m]["int8"]["size_bytes"] > 0 for m in models)
    assert metrics["filter_pruned"]["macs"] < metrics["baseline"]["macs"] == metrics["pruned"]["macs"]
    text = (repo / "report/report.md").read_text()
    assert "`baseline`: imports/mine.keras" in text and "pixels scaled to [-1, 1]" in text


@pytest.mark.parametrize("name", FORMATS)
def test_the_train_stage_saves_the_users_model_unchanged_with_epochs_0(repo, monkeypatch, name):
    write_params(repo, {"train": {"architecture": "file", "model_file": f"imports/{name}", "epochs": 0, **IN_PROCESS}})
    monkeypatch.chdir(repo)
    stage("train")("data", f"models/from_{name}")
    saved = keras.models.load_model(repo / f"models/from_{name}/model", compile=False)
    reference = keras.models.load_model(repo / "imports/mine.keras", compile=False)
    np.testing.assert_allclose(probabilities(saved, repo), probabilities(reference, repo), atol=1e-5)


class Doubled(keras.layers.Layer):
    """A custom layer that nobody registered."""

    def call(self, x):
        return 2 * x


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.flatten, self.dense = keras.layers.Flatten(), keras.layers.Dense(CLASSES)

    def call(self, x):
        return self.dense(self.flatten(x))


def wrapped_in(layer):
    """The user's model with `layer` applied to its input first."""
    inputs = keras.Input(SHAPE)
    return keras.Model(inputs, user_model()(layer(inputs)))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """{case: (path, words its one line must contain)}: model files the train stage must refuse."""
    folder = tmp_path_factory.mktemp("bad_models")
    (folder / "notes.keras").write_text("not a model")
    (folder / "empty").mkdir()
    cases = {
        "missing": (folder / "absent.keras", ["does not exist", ".keras file"]),
        "not a model": (folder / "notes.keras", ["could not be loaded as a Keras model"]),
        "not a model folder": (folder / "empty", ["is not a .keras file, an .h5 file or a SavedModel folder"]),
    }
    subclassed = Subclassed()
    subclassed(np.zeros((1, *SHAPE), np.float32))
    subclassed.save(folder / "subclassed", save_format="tf")
    cases["subclassed"] = (folder / "subclassed", ["subclassed model", "functional"])
    for name, path in save_all(wrapped_in(keras.layers.Lambda(lambda t: t * 2)), folder / "lambda").items():
        cases[f"lambda {name}"] = (path, ["Lambda layer", "train.trust_model_code"])
    for name, path in save_all(wrapped_in(Doubled(name="doubled")), folder / "custom").items():
        cases[f"custom {name}"] = (path, ["custom class 'Doubled'", "not registered"])
    return cases


BAD = ["missing", "not a model", "not a model folder", "subclassed",
       *(f"{kind} {name}" for kind in ("lambda", "custom") for name in FORMATS)]


@pytest.mark.parametrize("case", BAD)
def test_a_bad_model_file_is_refused_in_one_line(bad_files, case):
    path, words = bad_files[case]
    with pytest.raises(UserError) as refusal:
        baseline.load(path)
    message = str(refusal.value)
    assert message.startswith(f"train.model_file: {path}") and "\n" not in message
    assert all(word in message for word in words), message


@pytest.mark.parametrize("name", FORMATS)
def test_trust_model_code_loads_a_lambda_layer(bad_files, name):
    path, _ = bad_files[f"lambda {name}"]
    model = baseline.load(path, trust_code=True)
    assert any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


@pytest.mark.parametrize("shape, classes, words", [
    ((32, 32, 3), CLASSES, ["takes inputs of shape (32, 32, 1)", "(32, 32, 3)", "data.channels"]),
    (SHAPE, 4, ["gives outputs of shape (10,)", "4 classes"]),
])
def test_a_model_that_does_not_fit_the_data_is_refused(shape, classes, words):
    with pytest.raises(UserError) as refusal:
        baseline.check_contract(user_model(), "mine.keras", shape, classes)
    assert all(word in str(refusal.value) for word in words), str(refusal.value)


def test_the_train_stage_refuses_a_lambda_layer_in_one_line_and_writes_nothing(repo, bad_files):
    path, _ = bad_files["lambda mine.h5"]
    write_params(repo, {"train": {"architecture": "file", "model_file": str(path), "epochs": 0}})
    result = run(["python", str(ROOT / "stages/train.py"), "data", "models/refused"], repo, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: train.model_file: {path} has a Lambda layer"), lines
    assert not (repo / "models/refused").exists()
