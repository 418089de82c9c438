import os

import numpy as np
import pytest

from conftest import on_disk
from edgecompress import convert
from edgecompress.train import models, training
from edgecompress.data import streams
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.methods.pruning import prunes
from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry  # after backend


def test_resnet18_topology_and_width():
    model = models.build("resnet18", (32, 32, 1), 10, 0.25)
    assert model.output_shape == (None, 10)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert len(convs) == 1 + 16 + 3  # stem, 8 basic blocks of 2 convs, 3 downsampling shortcuts
    assert [c.filters for c in convs if c.name.endswith("_b_conv")] == [16, 16, 32, 32, 64, 64, 128, 128]
    assert model.get_layer("logits").activation.__name__ == "linear"
    wider = models.build("resnet18", (32, 32, 1), 10, 0.5)
    assert 3.5 < wider.count_params() / model.count_params() < 4.1


def test_too_small_input_is_refused():
    with pytest.raises(UserError, match="at least 32x32"):
        models.build("resnet18", (16, 16, 1), 10, 0.25)


def tiny_arrays(seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(64) % 4
    x = np.zeros((64, 32, 32, 1), np.uint8)
    for i, label in enumerate(y):  # each class lights a different quadrant: learnable in a few steps
        r, c = divmod(int(label), 2)
        x[i, r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] = 200
    x = np.clip(x + rng.integers(0, 40, x.shape), 0, 255).astype(np.uint8)
    return {"train": (x[:48], y[:48]), "val": (x[48:], y[48:])}


def tiny_splits(folder, seed=0):
    """tiny_arrays as prepared splits in `folder`."""
    return on_disk(folder, tiny_arrays(seed))


def train_once(folder, seed, keep_best=True):
    training.seed_everything(seed)
    model = models.build("resnet18", (32, 32, 1), 4, 0.125)
    record = training.fit(model, tiny_splits(folder), optimizer="adam", learning_rate=0.01, schedule="cosine",
                          epochs=3, batch_size=16, seed=seed, keep_best=keep_best,
                          augment=training.augmenter("horizontal", 0.05, seed))
    return model, record


def test_same_seed_same_weights_and_a_full_record(tmp_path):
    first, record = train_once(tmp_path / "first", 7)
    second, _ = train_once(tmp_path / "second", 7)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [row["epoch"] for row in record["history"]] == [1, 2, 3]
    assert all(row["seconds"] > 0 for row in record["history"]) and record["epochs"] == 3
    best = max(range(3), key=lambda i: record["history"][i]["val_accuracy"])
    assert record["best_epoch"] == best + 1


def test_keep_best_restores_the_best_epoch_weights(tmp_path):
    model, record = train_once(tmp_path, 3)
    x, y = tiny_arrays()["val"]
    accuracy = (model.predict(x / 255.0, verbose=0).argmax(1) == y).mean()
    best = max(row["val_accuracy"] for row in record["history"])
    assert accuracy == pytest.approx(best, abs=1e-6)


def test_save_and_load_gives_the_same_predictions(tmp_path):
    model, _ = train_once(tmp_path, 1, keep_best=False)
    training.save(model, tmp_path / "model")
    assert (tmp_path / "model/saved_model.pb").is_file()
    loaded = models.load(tmp_path / "model")
    x = tiny_arrays()["val"][0] / 255.0
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_a_model_saved_from_its_layer_configs_converts_to_the_same_tflite_as_one_with_every_call_traced(tmp_path):
    model = models.build("mobilenetv2", (32, 32, 1), 10, 0.35, 64)
    training.save(model, tmp_path / "light")
    model.save(tmp_path / "traced", save_format="tf", include_optimizer=False)
    assert convert.convert(tmp_path / "light", "fp32") == convert.convert(tmp_path / "traced", "fp32")
    assert training.rebuilt_from_config(model)
    doubled = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: 2 * x)])
    assert not training.rebuilt_from_config(doubled)  # its code would not reload safely: saved with its trace


def test_history_csv(tmp_path):
    training.write_history([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}], tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text() == "epoch,loss\n1,0.5\n2,0.25\n"


def test_select_layers_skips_by_name_and_lists_the_unsupported():
    model = models.build("resnet18", (32, 32, 1), 10, 0.125)
    picked, unsupported = models.select_layers(model, ["stem_conv", "logits"], prunes, PruneRegistry.supports)
    assert len(picked) == 19 and "stem_conv" not in picked and "logits" not in picked and unsupported == []
    assert all(model.get_layer(name).__class__.__name__ == "Conv2D" for name in picked)
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.SeparableConv2D(4, 3, name="sep")(inputs)
    hidden = keras.layers.PReLU(name="prelu")(hidden)
    odd = keras.Model(inputs, keras.layers.Conv1D(2, 1, name="conv1d")(keras.layers.Reshape((36, 4))(hidden)))
    assert models.select_layers(odd, [], prunes, PruneRegistry.supports) == (["sep", "conv1d"], ["prelu (PReLU)"])


def test_skip_lists_name_the_first_and_last_layer_with_a_kernel_of_any_model_and_refuse_unknown_names():
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.BatchNormalization()(keras.layers.Rescaling(2.0)(inputs))  # weights, but no kernel
    hidden = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(hidden))
    mine = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(3)(hidden)))
    conv, _, last = (layer.name for layer in mine.layers if layer.name.startswith(("conv2d", "dense")))
    assert models.layer_names(mine, ["first", "last", "first"], "prune.skip_layers") == [conv, last]
    assert models.layer_names(models.build("resnet18", (32, 32, 1), 10, 0.125), ["first", "last"], "k") == [
        "stem_conv", "logits"]
    named_first = keras.Model(inputs, keras.layers.Dense(2, name="first")(keras.layers.Flatten()(inputs)))
    assert models.layer_names(named_first, ["first"], "k") == ["first"]  # a layer's own name comes first
    with pytest.raises(UserError, match=r"^params: prune.skip_layers names 'stem', which is not a layer of "
                                        rf"{mine.name}; expected first or last, or a layer with a kernel: {conv}, "):
        models.layer_names(mine, ["stem"], "prune.skip_layers")


def test_reestimate_batch_norm_averages_the_batch_statistics(tmp_path):
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(inputs))
    bn = model.get_layer("bn")
    bn.set_weights([np.ones(1), np.zeros(1), np.full(1, 99.0), np.full(1, 99.0)])  # stale stats
    x = np.random.default_rng(0).integers(0, 256, (64, 4, 4, 1)).astype(np.uint8)
    split = on_disk(tmp_path, {"train": (x, np.zeros(64, np.int64))})["train"]
    training.reestimate_batch_norm(model, streams.images(split, batch_size=16))
    batches = [x[i:i + 16] / np.float32(255) for i in range(0, 64, 16)]
    assert bn.moving_mean.numpy()[0] == pytest.approx(np.mean([b.mean() for b in batches]), rel=1e-5)
    assert bn.moving_variance.numpy()[0] == pytest.approx(np.mean([b.var(ddof=1) for b in batches]), rel=1e-4)  # unbiased, as Keras
    assert bn.momentum == 0.99


@pytest.mark.parametrize("preserve", ["none", "clusters_and_sparsity"])
def test_a_quantization_aware_model_counts_the_parameters_of_its_float_model(preserve):
    from edgecompress.methods._qat_schemes import quantize

    model = models.build("resnet18", (32, 32, 1), 10, 0.125)
    qat = quantize(model, preserve)
    assert qat.count_params() > model.count_params()  # ranges and step counters that are not weights
    assert models.count_parameters(qat) == models.count_parameters(model) == model.count_params()


def test_tensorflow_start_up_prints_nothing_and_other_native_lines_pass(capfd):
    import subprocess
    import sys

    from edgecompress.core import backend

    started = subprocess.run([sys.executable, "-c", "import edgecompress.core.backend"], capture_output=True, text=True)
    assert started.returncode == 0 and started.stderr == ""
    capfd.readouterr()
    with backend._start_up_noise_filtered():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\nE0000 something real failed\n")
    assert capfd.readouterr().err == "E0000 something real failed\n"
