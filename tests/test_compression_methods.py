"""The method modules on small hand-made models: pruning schedule steps, QAT preserving sparsity, and the
.tflite weight inspection that the metrics rely on."""
import numpy as np
import pytest

from edgecompress import convert
from edgecompress.measure import tflite_weights
from edgecompress.train import training
from edgecompress.core.backend import keras, tf
from edgecompress.core.errors import UserError
from edgecompress.methods import _cluster_kernels, _qat_schemes, pruning


@pytest.mark.parametrize("begin, end, frequency, total, expected", [
    (0, "auto", 10, 296, 290),   # the last mask update TFMOT makes: steps count 0 .. total - 1
    (0, "auto", 10, 291, 290),
    (5, "auto", 10, 100, 95),
    (0, 150, 10, 296, 150),
])
def test_last_pruning_step(begin, end, frequency, total, expected):
    assert pruning.last_step(begin, end, frequency, total) == expected


@pytest.mark.parametrize("shape, clusters", [((3, 3, 16, 8), 256), ((40, 10), 7), ((5,), 1)])
def test_nearest_centroids_agree_with_tfmot_argmin(shape, clusters):
    rng = np.random.default_rng(clusters)
    weight = tf.constant(rng.normal(size=shape).astype(np.float32))
    centroids = tf.constant(rng.normal(size=clusters).astype(np.float32))  # unsorted, as training leaves them
    expected = tf.argmin(tf.abs(tf.expand_dims(weight, -1) - centroids), axis=-1)
    found = _cluster_kernels.nearest_centroids(weight, centroids)
    assert found.dtype == expected.dtype and found.shape == weight.shape
    np.testing.assert_array_equal(found.numpy(), expected.numpy())
    hand = _cluster_kernels.nearest_centroids(tf.constant([-5.0, 0.1, 0.6, 2.0, 2.2, 9.0]),
                                        tf.constant([1.0, -1.0, 0.0, 3.0]))
    assert hand.numpy().tolist() == [1, 2, 0, 0, 3, 3]  # 2.0, halfway between 1 and 3, goes to the smaller


@pytest.mark.parametrize("channel_axis", [-1, 1])
def test_per_channel_nearest_centroids_agree_with_tfmot_per_channel_argmin(channel_axis):
    rng = np.random.default_rng(3)
    weight = tf.constant(rng.normal(size=(3, 5, 3, 6)).astype(np.float32))
    centroids = tf.constant(rng.normal(size=(weight.shape[channel_axis], 9)).astype(np.float32))
    moved = np.moveaxis(weight.numpy(), channel_axis, 0)
    expected = np.stack([np.abs(moved[c][..., None] - centroids[c].numpy()).argmin(-1) for c in range(len(moved))])
    found = _cluster_kernels.nearest_centroids_per_channel(weight, centroids, channel_axis)
    assert found.dtype == tf.int64 and found.shape == weight.shape
    np.testing.assert_array_equal(np.moveaxis(found.numpy(), channel_axis, 0), expected)


@pytest.mark.parametrize("data_format, shape", [("channels_last", (3, 3, 4, 6)), ("channels_first", (3, 6, 3, 4))])
def test_per_channel_clustered_weights_and_gradients_are_tfmots(data_format, shape):
    rng = np.random.default_rng(0)
    channels = shape[1 if data_format == "channels_first" else -1]
    centroids = tf.Variable(rng.normal(size=(channels, 5)).astype(np.float32))
    weight = tf.Variable(rng.normal(size=shape).astype(np.float32))
    algorithm = _cluster_kernels.clustering_algorithm.ClusteringAlgorithmPerChannel(
        centroids, _cluster_kernels.clustering_algorithm.GradientAggregation.SUM, data_format)
    indices, upstream = tf.constant(rng.integers(0, 5, size=shape)), tf.constant(rng.normal(size=shape))
    results = []
    for clustered_weight in (_cluster_kernels._looped_clustered_weight, _cluster_kernels._clustered_weight_per_channel):
        with tf.GradientTape() as tape:
            clustered = clustered_weight(algorithm, indices, weight)
            loss = tf.reduce_sum(clustered * tf.cast(upstream, tf.float32))
        results.append([clustered, *tape.gradient(loss, [centroids, weight])])
    for looped, batched in zip(*results):
        np.testing.assert_array_equal(batched.numpy(), looped.numpy())


@pytest.mark.parametrize("begin, end, message", [
    (300, "auto", "prune.begin_step = 300 .* only 296 steps"),
    (0, 296, "prune.end_step = 296 .* before the end of fine-tuning"),
    (50, 40, "prune.end_step = 40 .* after begin_step"),
])
def test_pruning_steps_outside_fine_tuning_are_refused(begin, end, message):
    with pytest.raises(UserError, match=message):
        pruning.last_step(begin, end, 10, 296)


def test_initial_sparsity_above_final_is_refused_under_the_name_the_user_wrote():
    settings = {"initial_sparsity": 0.9, "final_sparsity": 0.5}
    with pytest.raises(UserError, match=r"^params: prune.initial_sparsity = 0.9 .* at most prune.final_sparsity \(0.5"):
        pruning.Prune.check(settings, lambda key: f"prune.{key}")
    with pytest.raises(UserError, match=r"^params: models.mine.with.initial_sparsity = 0.9 .* at most prune.final_"):
        pruning.Prune.check(settings, lambda key: f"models.mine.with.{key}" if key == "initial_sparsity" else f"prune.{key}")
    pruning.Prune.check({"initial_sparsity": 0.5, "final_sparsity": 0.5}, str)


def two_conv_model(sparse_kernel):
    """Input -> dense_conv (no zeros) -> sparse_conv (given kernel) -> pooling -> Dense."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="dense_conv", activation="relu")(inputs)
    x = keras.layers.Conv2D(4, 3, name="sparse_conv", activation="relu")(x)
    outputs = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    layer = model.get_layer("sparse_conv")
    layer.set_weights([sparse_kernel, layer.get_weights()[1]])
    return model


def sparse_clustered_kernel(seed=0):
    """A 3x3x4x4 kernel, half zeros, the rest drawn from two values per output channel."""
    rng = np.random.default_rng(seed)
    values = np.array([-0.5, 0.5], np.float32)[rng.integers(0, 2, (3, 3, 4, 4))] * np.arange(1, 5)
    return np.where(rng.random((3, 3, 4, 4)) < 0.5, 0.0, values).astype(np.float32)


def test_pcqat_keeps_zeros_in_every_sparse_layer_after_a_dense_one(tmp_path):
    """TFMOT shares one weight quantizer and disables sparsity for all once a dense layer comes first."""
    training.seed_everything(0)
    kernel = sparse_clustered_kernel()
    model = _qat_schemes.quantize(two_conv_model(kernel), "clusters_and_sparsity")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.random((32, 8, 8, 1)), rng.random((32, 2)), epochs=2, batch_size=8, verbose=0)
    training.save(model, tmp_path / "model")
    (tmp_path / "int8.tflite").write_bytes(convert.convert(tmp_path / "model", "int8"))
    trained = dict(tflite_weights.kernels(tmp_path / "int8.tflite"))["sparse_conv"]  # output channels first
    assert np.array_equal(trained == 0, np.moveaxis(kernel, 3, 0) == 0)
    assert max(len(np.unique(channel)) for channel in trained) <= 3  # zero and two clusters per channel


@pytest.fixture(scope="module")
def converted_pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect")
    kernel = sparse_clustered_kernel(1)
    model = two_conv_model(kernel)
    training.save(model, folder / "model")
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    for quant in ("fp32", "fp16", "int8"):
        (folder / f"{quant}.tflite").write_bytes(convert.convert(folder / "model", quant, x, samples=16, seed=0))
    return folder, kernel


@pytest.mark.parametrize("quant", ["fp32", "fp16", "int8"])
def test_inspect_reads_sparsity_and_distinct_values_back(converted_pair, quant):
    folder, kernel = converted_pair
    found = tflite_weights.inspect(folder / f"{quant}.tflite", layers=["sparse_conv"])
    assert list(found["layers"]) == ["dense_conv", "sparse_conv", "head"]
    sparse = found["layers"]["sparse_conv"]
    assert sparse["weights"] == kernel.size
    assert sparse["sparsity"] == pytest.approx((kernel == 0).mean())
    expected_distinct = max(len(np.unique(kernel[..., c])) for c in range(4))
    assert sparse["max_distinct_per_channel"] == found["max_distinct_per_channel"] == expected_distinct
    total = sum(layer["weights"] for layer in found["layers"].values())
    assert found["sparsity"] == pytest.approx((kernel == 0).sum() / total, abs=0.02)
    assert tflite_weights.inspect(folder / f"{quant}.tflite")["max_distinct_per_channel"] > expected_distinct
