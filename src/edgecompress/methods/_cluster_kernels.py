"""Nearest-centroid search for TFMOT's clustering, batched: importing this module installs it in TFMOT's clustering
algorithm, which every clustering wrapper and cluster-preserving quantizer asks at every step."""
from edgecompress.core.backend import tf

from tensorflow_model_optimization.python.core.clustering.keras import clustering_algorithm  # after backend


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
