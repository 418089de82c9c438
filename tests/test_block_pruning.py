"""Block pruning's surgery (which blocks it finds, what the model computes without them) and its lesion order."""
import json

import numpy as np
import pytest

from edgecompress import methods
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.core.record import TrainingRecord
from edgecompress.methods._block_surgery import remove_blocks, residual_blocks
from edgecompress.train import macs, models, runs
from test_filter_pruning import with_random_statistics
from test_methods import DAMAGE_POINTS, FINE_TUNING, TRAIN, baseline
from test_models_and_training import tiny_splits

layers = keras.layers
BLOCK_PRUNE = {**FINE_TUNING, "alpha": 0.5, "probe_epochs": 1, "temperature": 4, "blocks": 1, "shortcuts": "identity"}


def silenced(model, blocks):
    """A copy of `model` whose blocks' branches add zero: every weight of each branch's last layer (a convolution's
    kernel, or BatchNorm's gamma and beta) is zero."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for block in blocks:
        last = copy.get_layer(block.branch[0])
        assert last.weights
        last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    return copy


def test_resnet18_has_eight_blocks_five_with_an_identity_shortcut():
    blocks = residual_blocks(models.build("resnet18", (32, 32, 1), 10, 0.25))
    assert [b.add for b in blocks] == [f"stage{s}_block{b}_add" for s in range(1, 5) for b in (1, 2)]
    assert [b.add for b in blocks if not b.projection] == ["stage1_block1_add", "stage1_block2_add",
                                                           "stage2_block2_add", "stage3_block2_add",
                                                           "stage4_block2_add"]
    assert blocks[2].projection == ("stage2_block1_down_bn", "stage2_block1_down_conv")
    assert blocks[2].branch[-1] == "stage2_block1_a_conv" and len(blocks[2].branch) == 5


def test_a_network_without_residual_adds_has_no_blocks():
    inputs = keras.Input((32, 32, 1))
    x = layers.Conv2D(4, 3)(inputs)
    joined = layers.Add()([layers.Conv2D(4, 1)(x), layers.Conv2D(4, 1)(x)])  # two branches of one length
    assert residual_blocks(keras.Model(inputs, layers.Dense(3)(layers.Flatten()(joined)))) == []
    assert residual_blocks(models.build("vgg16", (32, 32, 1), 10, 0.125)) == []


@pytest.mark.parametrize("architecture, width, input_size, shortcuts, every", [
    ("resnet18", 0.25, None, "identity", 2), ("resnet18", 0.25, None, "any", 1), ("resnet20", 0.5, None, "identity", 1),
    ("mobilenetv2", 0.35, 64, "identity", 2), ("wrn16_4", 0.25, None, "any", 2),
])
def test_without_its_blocks_the_model_computes_what_it_did_with_their_branches_silenced(architecture, width,
                                                                                        input_size, shortcuts, every):
    """Every `every`-th block removed: 1 removes adjacent blocks too, whose Adds lead through each other's ReLUs."""
    rng = np.random.default_rng(0)
    model = with_random_statistics(models.build(architecture, (32, 32, 1), 10, width, input_size), rng)
    blocks = [b for b in residual_blocks(model) if shortcuts == "any" or not b.projection]
    assert len(blocks) >= 3
    removed = blocks[::every]
    smaller = remove_blocks(model, removed)
    x = rng.uniform(0, 1, (4, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(smaller(x, training=False), silenced(model, removed)(x, training=False), atol=1e-5)
    gone = {name for block in removed for name in (block.add, *block.branch)}
    assert gone.isdisjoint(layer.name for layer in smaller.layers)
    assert smaller.count_params() == model.count_params() - sum(
        model.get_layer(name).count_params() for block in removed for name in block.branch)
    assert macs.count(smaller) < macs.count(model)


def test_no_block_removed_is_the_same_model_and_a_branch_that_is_a_model_output_is_no_block():
    model = models.build("resnet18", (32, 32, 1), 10, 0.125)
    assert [layer.name for layer in remove_blocks(model, []).layers] == [layer.name for layer in model.layers]
    inputs = keras.Input((8, 8, 4))
    branch = layers.Conv2D(4, 3, padding="same", name="branch")(inputs)
    joined = layers.Add(name="add")([inputs, layers.BatchNormalization(name="bn")(branch)])
    assert [b.add for b in residual_blocks(keras.Model(inputs, joined))] == ["add"]
    assert residual_blocks(keras.Model(inputs, [joined, branch])) == []  # the branch is read outside the block


def test_the_relu_after_a_removed_identity_block_goes_with_it():
    model = models.build("resnet18", (32, 32, 1), 10, 0.125)
    second = next(b for b in residual_blocks(model) if b.add == "stage2_block2_add")
    names = {layer.name for layer in remove_blocks(model, [second]).layers}
    assert "stage2_block2_out" not in names  # a ReLU of a ReLU's output
    first = next(b for b in residual_blocks(model) if b.add == "stage1_block1_add")
    assert "stage1_block1_out" in {layer.name for layer in remove_blocks(model, [first]).layers}  # after max pooling


def test_blocks_go_in_lesion_order_the_larger_first_on_a_tie():
    """The trial's accuracy without each set of blocks is scripted: stage 4's costs most, the others tie."""
    model = baseline()
    method = methods.create("block_prune", {**BLOCK_PRUNE, "blocks": 3})
    measured = []

    def trial(candidate, epochs, measured_model=None):
        names = {layer.name for layer in candidate.layers}
        assert names.isdisjoint(block.add for block in method.removed)  # each lesion goes on from those removed
        measured.append(epochs)
        return 0.5 if "stage4_block2_add" not in names else 0.9

    method.calibrate(model, trial)
    order = [r["block"] for r in method.facts()["removed"]]
    assert order == ["stage3_block2_add", "stage2_block2_add", "stage1_block1_add"]  # the ties: most parameters,
    assert measured == [0] * (5 + 4 + 3)  # then the earlier; lesions are measured, not trained


def test_more_blocks_than_the_model_has_is_one_line():
    method = methods.create("block_prune", {**BLOCK_PRUNE, "blocks": 6})
    with pytest.raises(UserError, match=r"^params: block_prune.blocks = 6 is not allowed; the upstream model has 5 "
                                        r"residual blocks that block_prune.shortcuts \(identity\) lets it remove; "
                                        r"expected at most 5$"):
        method.calibrate(baseline(), lambda *args: 1.0)
    with pytest.raises(UserError, match=r"^params: method block_prune is not allowed here; the upstream model has no "
                                        r"residual block that block_prune.shortcuts \(identity\) lets it remove"):
        method.calibrate(models.build("vgg16", (32, 32, 1), 4, 0.125), lambda *args: 1.0)


def test_block_pruning_through_compress_distils_a_shallower_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_splits(tmp_path / "data")
    runs.save("models/baseline", baseline(), {"epochs": 1, "best_epoch": 1, "history": []})
    method = methods.create("block_prune", {**BLOCK_PRUNE, "blocks": 2, "alpha": "auto", "shortcuts": "any"})
    method.use_teacher(runs.load("models/baseline")[0], "baseline")
    runs.compress(method, "models/baseline", "models/block_pruned", "data", TRAIN, 0, DAMAGE_POINTS)

    base, pruned = (TrainingRecord.read(f"models/{m}/train.json") for m in ("baseline", "block_pruned"))
    removed = pruned.facts["removed"]
    assert len(removed) == 2 and pruned.facts["removable"] == 8 and pruned.teacher == "baseline"
    assert pruned.params_count == base.params_count - sum(r["parameters"] for r in removed)
    saved = runs.load("models/block_pruned")[0]
    assert len(residual_blocks(saved)) == 6
    text = method.describe("block_pruned", json.loads((tmp_path / "models/block_pruned/train.json").read_text()))
    assert text.startswith("`block_pruned`: removed 2 of 8 removable residual blocks (") and "distilled from" in text
