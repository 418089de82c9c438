"""Every architecture of the registry: built at a tiny width, trained one step, converted to every quantization,
run by LiteRT."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import on_disk
from edgecompress import convert
from edgecompress.train import models, training
from edgecompress.measure import runner
from edgecompress.core.errors import UserError
from edgecompress.core.names import ARCHITECTURES, QUANTIZATIONS

TINY_WIDTH = {"mobilenet": 0.25, "mobilenetv2": 0.35, "mobilenetv3small": 0.25, "mobilenetv3large": 0.25}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_each_architecture_trains_converts_to_every_quantization_and_runs(architecture, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 32, 32, 3), np.uint8)
    y = np.arange(8) % 4
    training.seed_everything(0)
    model = models.build(architecture, (32, 32, 3), 4, TINY_WIDTH.get(architecture, 0.125))
    assert model.output_shape == (None, 4) and model.get_layer("logits").activation.__name__ == "linear"
    before = [w.copy() for w in model.get_weights()]
    split = on_disk(tmp_path / "data", {"train": (x, y)})["train"]
    training.fit(model, {"train": split, "val": split}, optimizer="adam", learning_rate=0.01, epochs=1,
                 batch_size=8, seed=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # one step moved weights
    training.save(model, tmp_path / "model")
    for quantization in QUANTIZATIONS:  # MobileNetV3's hard-swish has no int16x8 kernel: it stays float there
        flatbuffer = convert.convert(tmp_path / "model", quantization, x.astype(np.float32) / 255, samples=8, seed=0)
        (tmp_path / f"{quantization}.tflite").write_bytes(flatbuffer)
        result = runner.run_model(tmp_path / f"{quantization}.tflite", runner.TestSplit(split.folder), warmup=1)
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


@pytest.mark.parametrize("architecture, width", [("resnet20", 0.5), ("wrn16_4", 0.125)])  # 8 channels in stage 1
def test_a_narrow_strided_projection_trains_on_an_odd_batch(architecture, width, tmp_path):
    """oneDNN aborts the weight gradient of a strided 1x1 convolution on 8 channels and 15 images (oneDNN issue
    6035): the registry subsamples first, so that the projection has stride 1. Run apart: the bug kills the process."""
    script = f"""
import subprocess
import sys

import numpy as np
from edgecompress import data
from edgecompress.train import models, training
model = models.build({architecture!r}, (32, 32, 1), 10, {width})
x, y = np.random.default_rng(0).integers(0, 256, (45, 32, 32, 1), np.uint8), np.arange(45) % 10
data.write_split({str(tmp_path / "train")!r}, x, y, shard_bytes=2**20)
split = data.open_split({str(tmp_path / "train")!r})
training.fit(model, {{"train": split, "val": split}}, optimizer="adam", learning_rate=0.01, epochs=1,
             batch_size=15, seed=0)
print("trained")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "trained" in result.stdout, result.stderr[-2000:]
    assert models.build(architecture, (32, 32, 1), 10, width).get_layer("stage2_block1_down_subsample")
