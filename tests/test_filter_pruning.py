"""Filter pruning's surgery, its criteria, MACs, and the distillation weights of paper 004's formula 7."""
import numpy as np
import pytest

from edgecompress.train import macs, models
from edgecompress.core.backend import keras, tfmot
from edgecompress.core.errors import UserError
from edgecompress.methods._filter_surgery import Plan, choose, prune_filters
from edgecompress.methods.filter_pruning import FilterPrune
from edgecompress.methods.knowledge_distillation import allocate

layers = keras.layers


def with_random_statistics(model, rng):
    """Give every BatchNorm non-trivial parameters and statistics, so that a channel it shifts is visible."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = (w.shape for w in layer.get_weights())
            layer.set_weights([rng.uniform(0.5, 1.5, gamma), rng.normal(0, 0.5, beta), rng.normal(0, 0.5, mean),
                               rng.uniform(0.5, 2, var)])
    return model


def zero_removed_filters(model, plan):
    """A copy of `model` whose removed output channels are zero: each filter, its bias and what BatchNorm adds."""
    zeroed = keras.models.clone_model(model)
    zeroed.set_weights(model.get_weights())
    for layer in zeroed.layers:
        if layer.name not in plan.sliced or not layer.weights:
            continue
        drop = np.setdiff1d(np.arange(plan.groups[plan.outputs[layer.name]].size), plan.keep_of(plan.outputs[layer.name]))
        weights = layer.get_weights()
        if isinstance(layer, layers.BatchNormalization):
            weights[0][drop] = weights[1][drop] = 0  # gamma and beta: the channel leaves BatchNorm at zero
        else:
            for w in weights:
                if isinstance(layer, layers.DepthwiseConv2D) and w.ndim == 4:
                    w[:, :, drop] = 0
                else:
                    w[..., drop] = 0
        layer.set_weights(weights)
    return zeroed


@pytest.mark.parametrize("architecture, width, input_size", [
    ("resnet18", 0.25, None), ("resnet20", 0.5, None), ("vgg16", 0.25, None), ("mobilenetv2", 0.35, 64),
])
def test_the_shrunk_model_computes_what_the_original_does_with_the_removed_filters_zeroed(architecture, width,
                                                                                          input_size):
    rng = np.random.default_rng(0)
    model = with_random_statistics(models.build(architecture, (32, 32, 1), 10, width, input_size), rng)
    small, plan = prune_filters(model, "fpgm", 0.5)
    assert sum(g.keep is not None for g in plan.roots()) >= 10  # most of the network was pruned
    x = rng.uniform(0, 1, (4, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(small(x, training=False), zero_removed_filters(model, plan)(x, training=False),
                               atol=1e-5)
    assert small.count_params() < 0.4 * model.count_params() and macs.count(small) < 0.4 * macs.count(model)
    assert len(small.layers) == len(model.layers)


def test_a_residual_add_prunes_its_inputs_as_one_group_and_skip_layers_keeps_the_group_whole():
    model = models.build("resnet20", (32, 32, 1), 10, 0.5)
    plan = Plan(model, skip=["stage2_block1_down_conv"])
    groups = {tuple(sorted(g.producers)): g for g in plan.roots()}
    stage1 = groups[("stage1_block1_b_conv", "stage1_block2_b_conv", "stage1_block3_b_conv", "stem_conv")]
    stage2 = groups[("stage2_block1_b_conv", "stage2_block1_down_conv", "stage2_block2_b_conv",
                     "stage2_block3_b_conv")]
    assert stage1.whole is None and stage2.whole == "in skip_layers"
    choose(plan, "l1", 0.5)
    assert len(stage1.keep) == 4 and stage2.keep is None
    small = prune_filters(model, "l1", 0.5, ["stage2_block1_down_conv"])[0]
    assert small.get_layer("stage2_block2_b_conv").filters == 16 and small.get_layer("stem_conv").filters == 4


def hand_made_layer():
    """One convolution whose fourth filter is the mean of the other three: nearest their geometric median, yet
    not the smallest norm."""
    inputs = keras.Input((4, 4, 3))
    conv = layers.Conv2D(4, 1, use_bias=False, name="conv")
    model = keras.Model(inputs, layers.Activation("softmax")(layers.Dense(2, name="head")(
        layers.GlobalAveragePooling2D()(conv(inputs)))))
    kernel = np.zeros((1, 1, 3, 4), np.float32)
    kernel[0, 0, :, :3] = np.diag([1.0, 1.1, 1.2])
    kernel[0, 0, :, 3] = [0.4, 0.4, 0.4]  # L1 1.2: larger than filter 0's
    conv.set_weights([kernel])
    return model


@pytest.mark.parametrize("criterion, removed", [("fpgm", 3), ("l1", 0), ("l2", 3)])
def test_each_criterion_removes_the_filter_it_should(criterion, removed):
    _, plan = prune_filters(hand_made_layer(), criterion, 0.25)
    conv = next(g for g in plan.roots() if g.producers == ["conv"])
    assert sorted(set(range(4)) - set(conv.keep)) == [removed]


def test_a_layer_the_surgery_cannot_follow_keeps_its_inputs_whole_and_is_listed():
    inputs = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, name="a")(inputs)
    b = layers.Conv2D(4, 3, name="b")(inputs)
    joined = layers.Conv2D(6, 1, groups=2, name="grouped")(layers.Concatenate(name="cat")([a, b]))
    c = layers.Conv2D(6, 1, name="c")(joined)
    model = keras.Model(inputs, layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(c)))
    plan = Plan(model)
    groups = {tuple(g.producers): g for g in plan.roots()}
    assert "cat (Concatenate)" in groups[("a",)].whole and "cat (Concatenate)" in groups[("b",)].whole
    assert groups[("c",)].whole is None and plan.unfollowed == ["grouped (Conv2D)"]
    small, plan = prune_filters(model, "l2", 0.5)
    assert small.get_layer("c").filters == 3 and small.get_layer("a").filters == 4


def test_a_ratio_that_leaves_a_layer_no_filter_is_a_user_error():
    model = hand_made_layer()
    with pytest.raises(UserError, match=r"filter_prune.ratio = 0.9 is not allowed; it would leave conv with no "
                                        r"filter of its 4; expected a ratio below 0.875"):
        prune_filters(model, "fpgm", 0.9)


def test_rounds_compound_to_the_ratio():
    method = FilterPrune({"criterion": "l1", "ratio": 0.75, "steps": 2, "epochs": 1, "learning_rate": 0.1,
                          "skip_layers": []})
    model = models.build("resnet20", (32, 32, 1), 10, 0.5)
    for _ in range(method.rounds):
        model = method.apply(model, None, 1)
    facts = method.facts()
    assert facts["criterion"] == "l1"
    assert [(g["filters"], g["kept"]) for g in facts["groups"] if not g["whole"]][:2] == [(8, 2), (8, 2)]
    assert model.get_layer("stage3_block1_a_conv").filters == 8  # 32 filters, a quarter kept


def test_macs_of_a_hand_made_model_match_a_hand_count():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same")(inputs)                       # 8*8 positions x 3*3*3*4 = 6,912
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)           # 4*4 x 3*3*4 = 576
    x = layers.SeparableConv2D(6, 3, padding="same")(x)                   # 4*4 x (3*3*4 + 4*6) = 960
    x = layers.BatchNormalization()(layers.MaxPooling2D()(x))             # none
    model = keras.Model(inputs, layers.Dense(5)(layers.GlobalAveragePooling2D()(x)))  # 6*5 = 30
    assert macs.count(model) == 6912 + 576 + 960 + 30


def test_macs_of_a_wrapped_model_are_those_of_the_model_it_wraps():
    model = models.build("resnet20", (32, 32, 1), 10, 0.25)
    assert macs.count(tfmot.quantization.keras.quantize_model(model)) == macs.count(model)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
    assert macs.count(pruned) == macs.count(model)


@pytest.mark.parametrize("gain_labels, gain_teacher, alpha", [
    (0.0146, 0.0341, 0.0146 / 0.0487),  # paper 004's probes: weights 0.29 and 0.71
    (0.3, -0.1, 1.0),                   # a source that did harm gets no weight
    (-0.1, 0.0, 0.5),                   # neither helped: equal weights
])
def test_formula_7_shares_the_weight_by_the_probe_gains(gain_labels, gain_teacher, alpha):
    assert allocate(gain_labels, gain_teacher) == pytest.approx(alpha)
