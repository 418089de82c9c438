"""Low-rank factorization: the energy rule, exact reconstruction at full rank, parameter counts, the method."""
import numpy as np
import pytest

from edgecompress.methods import _factorization
from edgecompress.train import macs, models
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.methods.low_rank import LowRank

layers = keras.layers


def matrix_with_singular_values(values, rows=6, columns=4, seed=0):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(rows, len(values))))
    v, _ = np.linalg.qr(rng.normal(size=(columns, len(values))))
    return (u * values) @ v.T


@pytest.mark.parametrize("energy, rank", [(0.5, 1), (16 / 30, 1), (0.6, 2), (25 / 30, 2), (0.9, 3), (0.97, 4),
                                          (1.0, 4)])
def test_energy_picks_the_fewest_singular_values_that_keep_it(energy, rank):
    # squares 16, 9, 4, 1 of 30: one value keeps 0.533, two 0.833, three 0.967
    singular_values = np.linalg.svd(matrix_with_singular_values([4.0, 3.0, 2.0, 1.0]), compute_uv=False)
    assert _factorization.rank_for_energy(singular_values, energy) == rank


def test_rank_ratio_rounds_up_and_keeps_one():
    assert _factorization.rank_for_ratio(256, 0.25) == 64
    assert _factorization.rank_for_ratio(10, 0.25) == 3
    assert _factorization.rank_for_ratio(3, 0.01) == 1


def small_model():
    """Convolutions with stride, dilation, bias and activation, a residual add, a depthwise layer and a head."""
    image = keras.Input((12, 12, 3), name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv_a")(image)
    y = layers.Conv2D(16, 3, padding="same", dilation_rate=2, use_bias=False, name="conv_b")(x)
    x = layers.ReLU()(layers.Add()([x, layers.BatchNormalization(name="bn")(y)]))
    x = layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = layers.Conv2D(24, 1, name="pointwise")(x)
    x = layers.Dense(20, activation="relu", name="dense")(layers.GlobalAveragePooling2D()(x))
    logits = layers.Dense(5, name="logits")(x)
    model = keras.Model(image, layers.Activation("softmax", name="softmax")(logits), name="small")
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") if "variance" not in v.name else
                       rng.uniform(0.5, 2, w.shape).astype("float32") for v, w in zip(model.weights, model.get_weights())])
    return model


NAMES = ["conv_a", "conv_b", "pointwise", "dense", "logits"]


def test_at_full_rank_the_factorized_model_computes_the_same_function():
    model = small_model()
    full = {name: min(_factorization.kernel_matrix(model.get_layer(name)).shape) for name in NAMES}
    factorized = _factorization.factorize(model, full)
    x = np.random.default_rng(4).random((3, 12, 12, 3)).astype("float32")
    np.testing.assert_allclose(factorized.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    for name in NAMES:
        assert factorized.get_layer(name + "_basis").get_weights()[0].shape[-1] == full[name]
    assert factorized.get_layer("conv_a_basis").strides == (2, 2)
    assert factorized.get_layer("conv_a").kernel_size == (1, 1)
    assert factorized.get_layer("conv_b_basis").dilation_rate == (2, 2)


def test_a_sequential_model_is_factorized_too():
    model = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu", name="hidden"),
                              layers.Dense(3, name="out")])
    factorized = _factorization.factorize(model, {"hidden": 6, "out": 3})
    x = np.random.default_rng(5).random((4, 6)).astype("float32")
    np.testing.assert_allclose(factorized(x).numpy(), model(x).numpy(), atol=1e-5)


def test_a_truncated_layer_is_the_best_approximation_of_its_rank():
    model = small_model()
    factorized = _factorization.factorize(model, {"dense": 2})
    kernel = _factorization.kernel_matrix(model.get_layer("dense"))
    product = factorized.get_layer("dense_basis").get_weights()[0] @ factorized.get_layer("dense").get_weights()[0]
    u, s, vt = np.linalg.svd(kernel)
    np.testing.assert_allclose(product, (u[:, :2] * s[:2]) @ vt[:2], atol=1e-5)
    assert np.linalg.matrix_rank(product, tol=1e-4) == 2


def test_the_method_splits_only_layers_that_get_smaller_and_counts_what_it_saved():
    model = small_model()
    method = LowRank({"energy": 0.5, "rank_ratio": None, "skip_layers": ["conv_a"], "epochs": 1,
                      "learning_rate": 0.001})
    factorized = method.apply(model, None, 1)
    facts = method.facts()
    assert method.properties()["unsupported_layers"] == ["depthwise (DepthwiseConv2D)"]
    chosen = {c["layer"]: c for c in facts["factorized_layers"]}
    assert set(chosen) == {"conv_b", "pointwise", "dense", "logits"}  # conv_a skipped
    for name, choice in chosen.items():
        rows, columns = choice["kernel"]
        assert choice["factorized"] == (choice["rank"] * (rows + columns) < rows * columns)
        assert choice["energy_kept"] >= 0.5 - 1e-6
        assert (name + "_basis" in {l.name for l in factorized.layers}) == choice["factorized"]
    saved = sum(r * c - f["rank"] * (r + c) for f in chosen.values() if f["factorized"] for r, c in [f["kernel"]])
    assert saved > 0
    assert models.count_parameters(factorized) == models.count_parameters(model) - saved
    assert macs.count(factorized) < macs.count(model)


def test_a_layer_called_twice_stays_whole_and_is_listed():
    image = keras.Input((6,))
    shared = layers.Dense(6, name="shared")
    hidden = layers.Dense(40, name="hidden")(shared(shared(image)))
    model = keras.Model(image, layers.Dense(30, name="out")(hidden))
    method = LowRank({"energy": 0.5, "rank_ratio": None, "skip_layers": [], "epochs": 1, "learning_rate": 0.1})
    factorized = method.apply(model, None, 1)
    assert method.properties()["unsupported_layers"] == ["shared (Dense)"]
    assert [c["layer"] for c in method.facts()["factorized_layers"]] == ["hidden", "out"]
    x = np.random.default_rng(6).random((2, 6)).astype("float32")
    np.testing.assert_allclose(factorized.get_layer("shared")(x).numpy(), model.get_layer("shared")(x).numpy())


def test_a_skip_layer_the_model_lacks_is_refused():
    method = LowRank({"energy": 0.5, "rank_ratio": None, "skip_layers": ["conv9"], "epochs": 1, "learning_rate": 0.1})
    method.name = "lowrank"
    with pytest.raises(UserError, match="lowrank.skip_layers names 'conv9'"):
        method.name_layers(small_model())


def test_rank_ratio_sets_every_rank_from_the_full_rank():
    method = LowRank({"energy": None, "rank_ratio": 0.25, "skip_layers": [], "epochs": 1, "learning_rate": 0.1})
    method.apply(small_model(), None, 1)
    for choice in method.facts()["factorized_layers"]:
        assert choice["rank"] == max(1, int(np.ceil(0.25 * choice["full_rank"])))
