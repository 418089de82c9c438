"""Fine-tuning a model the user brings, in its own conditions: the augmentation its record names, skip lists that
resolve on any model, QAT on any functional model, and the guard that says when fine-tuning damaged a model."""
import runpy

import numpy as np
import pytest
import yaml

from conftest import ROOT, merged, read_split
from edgecompress import data, report
from edgecompress.core.backend import keras
from edgecompress.core.record import TrainingRecord
from edgecompress.train import runs, training

INPUT_RANGE = [-1, 1]
GRAINS = (16, 26, 40, 60)  # the classes: pixel noise of these standard deviations, told apart by fine detail alone
OWN_MODEL = {"architecture": "file", "epochs": 0, "input_range": INPUT_RANGE, "threads": 0}
ROTATION = {"flip": "none", "rotation": 0.03}  # train.augment's default, which these images' models never saw


def grains(per_class: int, seed: int, size: int = 32) -> tuple:
    """(uint8 images, labels): grey tiles of random brightness with pixel noise whose strength is the class.

    A rotation resamples the pixels bilinearly, which smooths the noise: a rotated tile looks like the next finer
    class, so fine-tuning on rotated tiles teaches the model to misread unrotated ones.
    """
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, grain in enumerate(GRAINS):
        for _ in range(per_class):
            image = rng.uniform(100, 156) + rng.normal(0, grain * rng.uniform(0.92, 1.08), (size, size))
            images.append(np.clip(image, 0, 255).astype(np.uint8)[..., None])
            labels.append(label)
    return np.stack(images), np.array(labels)


def stage(name):
    """A stage script's main(), run in this process."""
    return runpy.run_path(str(ROOT / "stages" / f"{name}.py"))["main"]


def project(root, model_file: str, override: dict = None) -> None:
    """A project in `root` on the grains, with the project's default params (no tiny epochs) and the user's model
    as the baseline, prepared."""
    x_train, y_train = grains(150, seed=0)
    x_test, y_test = grains(40, seed=1)
    np.savez(root / "grains.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    values = merged(yaml.safe_load((ROOT / "params.yaml").read_text()), {
        "data": {"source": "npz", "path": "grains.npz", "test_path": "grains.npz"},
        "train": {**OWN_MODEL, "model_file": model_file}, **(override or {})})
    (root / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        stage("prepare")("data")


def plain_cnn():
    """The user's own model: three convolutions, no BatchNorm, global pooling, softmax inside the last Dense."""
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(16, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="c2")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(len(GRAINS), activation="softmax", name="classes")(x))


def fit_without_augmentation(model, root):
    x, y = read_split(root / "data/train")
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy")
    model.fit(data.to_float(x, INPUT_RANGE), y, epochs=12, batch_size=32, verbose=0)
    return model


def accuracy_on_test(root, model_dir) -> float:
    model, record = runs.load(root / model_dir)
    return training.accuracy(model, data.open_split(root / "data/test"), 32, record.input_range)


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """The plain CNN trained elsewhere (here: without augmentation on [-1, 1]) and taken as the baseline."""
    root = tmp_path_factory.mktemp("own_cnn")
    project(root, "mine.h5")
    training.seed_everything(0)
    fit_without_augmentation(plain_cnn(), root).save(root / "mine.h5")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        stage("train")("data", "models/baseline")
    return root


@pytest.mark.parametrize("model", ["pruned", "qat", "filter_pruned"])
def test_every_method_keeps_the_users_model_on_the_defaults(own, monkeypatch, model):
    """No skip list set, no augmentation declared: each method fine-tunes as the model was trained."""
    monkeypatch.chdir(own)
    stage("compress")("data", "models/baseline", f"models/{model}")
    record = TrainingRecord.read(own / f"models/{model}/train.json")
    assert record.augment == {"flip": "none", "rotation": 0}  # train.model_file_augment, carried on
    reference = accuracy_on_test(own, "models/baseline")
    assert reference > 0.9
    assert accuracy_on_test(own, f"models/{model}") >= reference - 0.02
    if model == "pruned":
        assert record.skipped_layers == ("c1", "classes")  # `first` and `last`, by their names


def test_a_method_that_damages_the_model_is_flagged_by_its_stage_and_the_report(own, monkeypatch, capsys):
    """The fault users met: fine-tuning with an augmentation the model never saw (here set by the entry's `with`)."""
    monkeypatch.chdir(own)
    values = yaml.safe_load((own / "params.yaml").read_text())
    values["models"]["rotated"] = {"method": "prune", "from": "baseline", "with": {"augment": ROTATION}}
    (own / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    stage("compress")("data", "models/baseline", "models/rotated")
    record = TrainingRecord.read(own / "models/rotated/train.json")
    before, after = record.upstream_val_accuracy, record.val_accuracy
    assert record.augment == ROTATION and before > 0.9 and after < before - 0.1
    assert (f"rotated: validation accuracy fell from {before:.4f} (baseline) to {after:.4f}, more than "
            "report.damage_points (3); check its fine-tuning: the augmentation") in capsys.readouterr().out
    flagged = report.fine_tuning_damage({"baseline": TrainingRecord.read(own / "models/baseline/train.json").as_dict(),
                                         "rotated": record.as_dict()}, 3)
    assert [d["model"] for d in flagged] == ["rotated"]
    text = report.markdown([report.fine_tuning_section(flagged, 3)])
    assert (f"| rotated | baseline | {before:.4f} | {after:.4f} | {100 * (after - before):+.1f} | flip none, "
            "rotation 0.03 |") in text


def default_names_model():
    """A functional model with Keras' default layer names: BatchNorm, a SeparableConv2D, a depthwise convolution
    and a residual add. Built in a fresh Keras session, as a user's script would."""
    keras.backend.clear_session()
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=0.9)(x))  # its statistics settle in 12 epochs
    y = keras.layers.SeparableConv2D(16, 3, padding="same", activation="relu")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same")(y)
    x = keras.layers.Add()([x, keras.layers.Conv2D(16, 1)(y)])
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(32, 3, strides=2, activation="relu")(x))
    return keras.Model(inputs, keras.layers.Dense(len(GRAINS), activation="softmax")(x))


def test_the_qat_family_quantizes_a_model_with_default_layer_names_loaded_back(tmp_path, monkeypatch):
    """TFMOT splits the SeparableConv2D into layers it names conv2d and depthwise_conv2d: the user's own names."""
    project(tmp_path, "mine.keras", {method: {"epochs": 1} for method in ("prune", "cluster", "cluster_sparse", "qat",
                                                                         "pqat", "cqat", "pcqat")})
    model = default_names_model()
    assert {"conv2d", "conv2d_1", "depthwise_conv2d", "separable_conv2d"} <= {layer.name for layer in model.layers}
    fit_without_augmentation(model, tmp_path).save(tmp_path / "mine.keras")
    keras.backend.clear_session()  # the stages load it in a fresh session, where Keras has counted no names
    monkeypatch.chdir(tmp_path)
    stage("train")("data", "models/baseline")
    for name, source in (("pruned", "baseline"), ("clustered_kpp32", "baseline"), ("cluster_sparse", "pruned"),
                         ("qat", "baseline"), ("pqat", "pruned"), ("cqat", "clustered_kpp32"),
                         ("pcqat", "cluster_sparse")):
        stage("compress")("data", f"models/{source}", f"models/{name}")
    for name in ("qat", "pqat", "cqat", "pcqat"):
        model, record = runs.load(tmp_path / f"models/{name}")
        assert record.quantization_aware and record.val_accuracy > 0.5, name  # four classes: chance is 0.25
        assert model.get_layer("quant_conv2d").layer.kernel.shape == (3, 3, 1, 16), name  # the user's own conv2d
