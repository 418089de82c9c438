"""Input resolution reduction: the surgery's resize in front of the first layer, and the downscale method."""
import json

import numpy as np
import pytest

from edgecompress import methods
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.core.record import TrainingRecord
from edgecompress.methods._input_resizing import resized, seen_size
from edgecompress.train import macs, models, runs
from edgecompress.train.architectures import BUILDERS
from test_filter_pruning import with_random_statistics
from test_methods import DAMAGE_POINTS, FINE_TUNING, TRAIN, baseline
from test_models_and_training import tiny_splits

layers = keras.layers
DOWNSCALE = {**FINE_TUNING, "alpha": 0.5, "probe_epochs": 1, "temperature": 4, "input_size": 16}


@pytest.mark.parametrize("architecture, width", [("resnet18", 0.25), ("resnet20", 0.5), ("wrn16_4", 0.25)])
def test_the_resized_model_computes_what_its_layers_compute_on_the_smaller_image(architecture, width):
    rng = np.random.default_rng(0)
    model = with_random_statistics(models.build(architecture, (32, 32, 1), 10, width), rng)
    smaller = resized(model, 16)
    inputs = keras.Input((16, 16, 1))  # the same layers built for 16 px inputs (below what models.build allows)
    logits = layers.Dense(10, name="logits")(BUILDERS[architecture](inputs, width))
    native = keras.Model(inputs, layers.Activation("softmax")(logits))
    native.set_weights(model.get_weights())
    x = rng.uniform(0, 1, (4, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(smaller(x, training=False),
                               native(keras.layers.Resizing(16, 16)(x), training=False), atol=1e-5)
    assert smaller.input_shape == model.input_shape and seen_size(smaller) == 16 and seen_size(model) == 32
    assert smaller.count_params() == model.count_params()
    assert macs.count(smaller) == macs.count(native) < 0.5 * macs.count(model)


def test_a_model_that_already_resizes_changes_its_resize_rather_than_adding_one():
    student = models.build("mobilenetv2", (32, 32, 1), 10, 0.35, input_size=64)
    smaller = resized(student, 40)
    resizes = [layer for layer in smaller.layers if isinstance(layer, layers.Resizing)]
    assert [(r.name, r.height, r.width) for r in resizes] == [("resize", 40, 40)] and seen_size(smaller) == 40
    again = resized(resized(models.build("resnet18", (32, 32, 1), 10, 0.125), 24), 16)
    assert [layer.name for layer in again.layers if isinstance(layer, layers.Resizing)] == ["downscale"]
    assert seen_size(again) == 16


def test_every_reader_of_the_image_reads_the_resize_an_operator_on_it_too():
    """Two layers read the image, one of them a TFOpLambda (`image * 2.0`, whose config node is one flat ref); a
    layer already named downscale keeps its name."""
    image = keras.Input((32, 32, 1))
    doubled = layers.Conv2D(2, 3, padding="same", name="downscale")(image * 2.0)
    joined = layers.Add(name="joined")([doubled, layers.Conv2D(2, 1, name="side")(image)])
    model = keras.Model(image, layers.Dense(3)(layers.GlobalAveragePooling2D()(joined)))
    smaller = resized(model, 8)
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 1)).astype("float32")
    small = keras.layers.Resizing(8, 8)(x)
    expected = model.get_layer("downscale")(small * 2.0) + model.get_layer("side")(small)
    inner = keras.Model(smaller.input, smaller.get_layer("joined").output)
    np.testing.assert_allclose(inner(x), expected, atol=1e-6)
    assert seen_size(smaller) == 8 and smaller.get_layer("downscale_").height == 8


def test_a_size_the_models_layers_cannot_run_at_is_one_line():
    """MobileNetV2's padding is fixed for its own input size: at 8 px a strided block has nothing left to read."""
    student = models.build("mobilenetv2", (32, 32, 1), 10, 0.35, input_size=32)
    with pytest.raises(UserError, match=r'^params: downscale.input_size = 8 is not allowed; the upstream model\'s '
                                        r'layers do not run on 8x8 images \(layer "block_\d+_depthwise" \(type '
                                        r'DepthwiseConv2D\): Negative dimension size caused by subtracting 3 from 2\); '
                                        r'expected a larger size'):
        resized(student, 8)


def test_a_model_whose_weights_fit_only_its_input_size_is_one_line():
    inputs = keras.Input((32, 32, 1))
    flat = layers.Flatten()(layers.Conv2D(4, 3, padding="same", name="conv")(inputs))
    with pytest.raises(UserError, match=r'^params: downscale.input_size = 16 is not allowed; the upstream model\'s '
                                        r'layers do not run on 16x16 images \(layer "dense\w*" \(type Dense\): '
                                        r'Dimensions must be equal, but are 1024 and 4096\); expected a larger size, '
                                        r'or a network that pools globally before its classifier$'):
        resized(keras.Model(inputs, layers.Dense(3)(flat), name="flat"), 16)


def test_an_input_size_above_what_the_model_sees_is_one_line():
    method = methods.create("downscale", {**DOWNSCALE, "input_size": 40})
    with pytest.raises(UserError, match=r"^params: downscale.input_size = 40 is not allowed; the upstream model sees "
                                        r"32x32 images; expected at most 32$"):
        method.calibrate(baseline(), lambda *args: 1.0)


def test_downscale_through_compress_distils_the_model_at_the_smaller_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_splits(tmp_path / "data")
    runs.save("models/baseline", baseline(), {"epochs": 1, "best_epoch": 1, "history": []})
    method = methods.create("downscale", {**DOWNSCALE, "alpha": "auto"})
    method.use_teacher(runs.load("models/baseline")[0], "baseline")
    runs.compress(method, "models/baseline", "models/lowres", "data", TRAIN, 0, DAMAGE_POINTS)

    base, lowres = (TrainingRecord.read(f"models/{m}/train.json") for m in ("baseline", "lowres"))
    assert lowres.facts["input_size"] == {"before": 32, "after": 16} and lowres.teacher == "baseline"
    assert lowres.params_count == base.params_count and "gain_labels" in lowres.facts
    saved = runs.load("models/lowres")[0]
    assert saved.input_shape == (None, 32, 32, 1) and seen_size(saved) == 16
    text = method.describe("lowres", json.loads((tmp_path / "models/lowres/train.json").read_text()))
    assert text.startswith("`lowres`: sees its images downscaled from 32x32 to 16x16 by a Resizing layer") and (
        "distilled from `baseline`" in text)
