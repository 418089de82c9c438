"""Weight clustering with TFMOT: each chosen kernel shares `clusters` centroids; strip before saving."""
from edgecompress.core.backend import tf, tfmot
from edgecompress.core.params import NAMES, fine_tuning, integer, one_of
from edgecompress.methods.base import Method
from edgecompress.train.models import select_layers, wrap_layers

from tensorflow_model_optimization.python.core.clustering.keras import clustering_algorithm  # after backend
from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

clustering = tfmot.clustering.keras


def nearest_in_rows(values, centroids):
    """For each row of `values` (rows x n), the index of each value's nearest centroid in the same row of
    `centroids` (rows x clusters), by binary search among the midpoints of the row's sorted centroids.

    O(values x log clusters) time and O(values) memory, where TFMOT's argmin over |weight - centroid| builds a
    weights x clusters matrix at every training step (0.6 GB for one 590k-weight kernel at 256 clusters). A
    value exactly halfway between two centroids goes to the smaller one.
    """
    order = tf.argsort(centroids, axis=-1, stable=True)
    ascending = tf.gather(centroids, order, batch_dims=1)
    midpoints = (ascending[:, 1:] + ascending[:, :-1]) / 2
    position = tf.searchsorted(midpoints, values, side="left", out_type=tf.int64)
    return tf.gather(tf.cast(order, tf.int64), position, batch_dims=1)


def nearest_centroids(weight, centroids):
    """The index of each weight's nearest centroid among one set of `centroids` (nearest_in_rows, one row)."""
    return tf.reshape(nearest_in_rows(tf.reshape(weight, [1, -1]), centroids[None]), tf.shape(weight))


def nearest_centroids_per_channel(weight, centroids, channel_axis=-1):
    """nearest_centroids for each output channel of a convolution kernel with its own row of `centroids`
    (channels x clusters), all channels in one batched search where TFMOT loops over them in Python."""
    moved = tf.experimental.numpy.moveaxis(weight, channel_axis, 0)
    indices = nearest_in_rows(tf.reshape(moved, [tf.shape(centroids)[0], -1]), centroids)
    return tf.experimental.numpy.moveaxis(tf.reshape(indices, tf.shape(moved)), 0, channel_axis)


def _pulling_indices(algorithm, weight, centroids=None):
    return nearest_centroids(weight, algorithm.cluster_centroids if centroids is None else centroids)


def _channel_axis(algorithm) -> int:
    return 1 if algorithm.data_format == "channels_first" else -1


def _pulling_indices_per_channel(algorithm, weight):
    return nearest_centroids_per_channel(weight, algorithm.cluster_centroids, _channel_axis(algorithm))


_looped_clustered_weight = clustering_algorithm.ClusteringAlgorithmPerChannel.get_clustered_weight


def _clustered_weight_per_channel(algorithm, pulling_indices, original_weight):
    """Each channel's centroids gathered by its indices in one batched gather (same values and gradients as TFMOT's
    loop over channels), for the summed centroid gradients that cluster-preserving QAT uses."""
    if algorithm.cluster_gradient_aggregation != clustering_algorithm.GradientAggregation.SUM:
        return _looped_clustered_weight(algorithm, pulling_indices, original_weight)
    axis = _channel_axis(algorithm)
    by_channel = tf.experimental.numpy.moveaxis(pulling_indices, axis, 0)
    clustered = tf.gather(algorithm.cluster_centroids, by_channel, batch_dims=1)
    return algorithm.add_gradient_to_original_weight(tf.experimental.numpy.moveaxis(clustered, 0, axis),
                                                     tf.identity(original_weight))


# every clustering wrapper and cluster-preserving quantizer asks these at every step; cluster-preserving QAT
# takes the per-channel one for a convolution whose channels have (nearly) equal numbers of distinct values
clustering_algorithm.ClusteringAlgorithm.get_pulling_indices = _pulling_indices
clustering_algorithm.ClusteringAlgorithmPerChannel.get_pulling_indices = _pulling_indices_per_channel
clustering_algorithm.ClusteringAlgorithmPerChannel.get_clustered_weight = _clustered_weight_per_channel


def clusters(layer) -> bool:
    """Whether TFMOT clusters weights of `layer` (Conv2D, Dense, SeparableConv2D's pointwise kernel, ...)."""
    return bool(ClusteringRegistry._LAYERS_WEIGHTS_MAP.get(layer.__class__))


def centroid_init(name: str):
    """TFMOT's CentroidInitialization for one of CENTROID_INITS (kmeans_plus_plus -> KMEANS_PLUS_PLUS)."""
    return getattr(clustering.CentroidInitialization, name.upper())


CENTROID_INITS = ("kmeans_plus_plus", "linear", "random", "density_based")
CLUSTERING = {"clusters": integer(2, 65536), "init": one_of(*CENTROID_INITS)}


class Cluster(Method):
    """`cluster_weights` on every Conv2D / Dense layer but cluster.skip_layers."""

    rules = fine_tuning(**CLUSTERING, skip_layers=NAMES)
    preserve_sparsity = False

    def layers_of(self, model, upstream) -> tuple:
        """(layers to cluster, layers with weights that clustering cannot wrap)."""
        return select_layers(model, self.settings["skip_layers"], "cluster.skip_layers", clusters,
                             ClusteringRegistry.supports)

    def apply(self, model, upstream, steps):
        self.layers, self.unsupported = self.layers_of(model, upstream)
        return wrap_layers(model, self.layers, lambda layer: clustering.cluster_weights(
            layer, number_of_clusters=self.settings["clusters"],
            cluster_centroids_init=centroid_init(self.settings["init"]), preserve_sparsity=self.preserve_sparsity))

    def finish(self, model, train_images):
        return clustering.strip_clustering(model)

    def facts(self):
        return {"clustered_layers": self.layers, "clusters": self.settings["clusters"],
                "unsupported_layers": self.unsupported}


class ClusterSparse(Cluster):
    """The sparse chain's clustering: exactly the upstream's pruned layers, keeping their zeros at zero."""

    rules = fine_tuning(**CLUSTERING)
    preserve_sparsity = True

    def layers_of(self, model, upstream) -> tuple:
        return list(upstream.pruned_layers), list(upstream.unsupported_layers)

    def facts(self):
        return {**super().facts(), "pruned_layers": self.layers}


METHODS = {"cluster": Cluster, "cluster_sparse": ClusterSparse}
