"""Weight clustering with TFMOT: each chosen kernel shares `clusters` centroids; strip before saving."""
from edgecompress.backend import tfmot
from edgecompress.models import wrap_layers

clustering = tfmot.clustering.keras
INITS = {
    "kmeans_plus_plus": clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
    "linear": clustering.CentroidInitialization.LINEAR,
    "random": clustering.CentroidInitialization.RANDOM,
    "density_based": clustering.CentroidInitialization.DENSITY_BASED,
}


def cluster(model, layer_names, clusters: int, init: str, preserve_sparsity: bool = False):
    """A copy of `model` whose `layer_names` are clustered; `preserve_sparsity` keeps pruned zeros at zero."""
    return wrap_layers(model, layer_names, lambda layer: clustering.cluster_weights(
        layer, number_of_clusters=clusters, cluster_centroids_init=INITS[init],
        preserve_sparsity=preserve_sparsity))


def strip(model):
    """The model without clustering wrappers: plain layers whose kernels hold only centroid values."""
    return clustering.strip_clustering(model)
