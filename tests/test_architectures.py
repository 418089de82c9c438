"""Every architecture of the registry: built at a tiny width, trained one step, converted to int8, run by LiteRT."""
import numpy as np
import pytest

from edgecompress import convert, models, runner, training
from edgecompress.errors import UserError
from edgecompress.names import ARCHITECTURES

TINY_WIDTH = {"mobilenet": 0.25, "mobilenetv2": 0.35, "mobilenetv3small": 0.25, "mobilenetv3large": 0.25}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_each_architecture_trains_converts_to_int8_and_runs(architecture, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 32, 32, 3), np.uint8)
    y = np.arange(8) % 4
    training.seed_everything(0)
    model = models.build(architecture, (32, 32, 3), 4, TINY_WIDTH.get(architecture, 0.125))
    assert model.output_shape == (None, 4) and model.get_layer("logits").activation.__name__ == "linear"
    before = [w.copy() for w in model.get_weights()]
    training.fit(model, {"train": (x, y), "val": (x, y)}, optimizer="adam", learning_rate=0.01, epochs=1,
                 batch_size=8, seed=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # one step moved weights
    training.save(model, tmp_path / "model")
    flatbuffer = convert.convert(tmp_path / "model", "int8", x.astype(np.float32) / 255, samples=8, seed=0)
    (tmp_path / "int8.tflite").write_bytes(flatbuffer)
    result = runner.run_model(tmp_path / "int8.tflite", x, y, warmup=1)
    assert 0 <= result["accuracy"] <= 1 and result["latency_p50_ms"] > 0
    assert np.asarray(result["confusion"]).sum() == len(y)


@pytest.mark.parametrize("architecture, depth_convs", [("resnet20", 19), ("resnet32", 31), ("resnet56", 55),
                                                       ("vgg16", 13), ("wrn16_4", 13)])
def test_the_papers_topologies_have_their_depth(architecture, depth_convs):
    model = models.build(architecture, (32, 32, 1), 10, 1.0)
    convs = [l for l in model.layers if type(l).__name__ == "Conv2D" and not l.name.endswith("down_conv")]
    assert len(convs) == depth_convs  # 3x3 convolutions on the main path (projections aside)
    if architecture.startswith("resnet"):
        assert sorted({c.filters for c in convs}) == [16, 32, 64]
    if architecture == "wrn16_4":
        assert sorted({c.filters for c in convs}) == [16, 64, 128, 256]


def test_a_width_that_leaves_a_layer_empty_is_refused():
    with pytest.raises(UserError, match=r"width 0.01 gives resnet20 a layer of 16 x 0.01 = 0 channels"):
        models.build("resnet20", (32, 32, 1), 10, 0.01)
