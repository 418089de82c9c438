"""Weight clustering with TFMOT: each chosen kernel shares `clusters` centroids; strip before saving."""
from edgecompress.backend import tfmot
from edgecompress.methods.base import Method
from edgecompress.models import select_layers, wrap_layers

from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (  # after backend
    ClusteringRegistry,
)

clustering = tfmot.clustering.keras


def clusters(layer) -> bool:
    """Whether TFMOT clusters weights of `layer` (Conv2D, Dense, SeparableConv2D's pointwise kernel, ...)."""
    return bool(ClusteringRegistry._LAYERS_WEIGHTS_MAP.get(layer.__class__))


def centroid_init(name: str):
    """TFMOT's CentroidInitialization for one of names.CENTROID_INITS (kmeans_plus_plus -> KMEANS_PLUS_PLUS)."""
    return getattr(clustering.CentroidInitialization, name.upper())


class Cluster(Method):
    """`cluster_weights` on every Conv2D / Dense layer but cluster.skip_layers (one cluster.variants entry)."""

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

    preserve_sparsity = True

    def layers_of(self, model, upstream) -> tuple:
        return list(upstream.pruned_layers), list(upstream.unsupported_layers)

    def facts(self):
        return {**super().facts(), "pruned_layers": self.layers}
