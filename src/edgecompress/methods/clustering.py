"""Weight clustering with TFMOT: each chosen kernel shares `clusters` centroids; strip before saving."""
from edgecompress.core.params import NAMES, fine_tuning, integer, one_of
from edgecompress.methods.base import Method

CENTROID_INITS = ("kmeans_plus_plus", "linear", "random", "density_based")
CLUSTERING = {"clusters": integer(2, 65536), "init": one_of(*CENTROID_INITS)}


def clustering():
    """TFMOT's clustering API (tfmot.clustering.keras) with the batched nearest-centroid search installed."""
    from edgecompress.core.backend import tfmot
    from edgecompress.methods import _cluster_kernels  # noqa: F401  (installs itself)

    return tfmot.clustering.keras


class Cluster(Method):
    """`cluster_weights` on every Conv2D / Dense layer but cluster.skip_layers."""

    rules = fine_tuning(**CLUSTERING, skip_layers=NAMES)
    preserve_sparsity = False

    def layers_of(self, model, upstream) -> tuple:
        """(layers to cluster, layers with weights that clustering cannot wrap)."""
        from edgecompress.train.models import select_layers
        from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

        return select_layers(model, self.settings["skip_layers"],
                             lambda layer: bool(ClusteringRegistry._LAYERS_WEIGHTS_MAP.get(type(layer))),
                             ClusteringRegistry.supports)

    def enough_weights(self, model, names: list) -> tuple:
        """(the layers of `names` with at least `clusters` weights to share them, non-zero ones where zeros are kept;
        the others as "name (N weights for K clusters)"): TFMOT's k-means++ cannot seed more centroids than points."""
        from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

        clusters, kept, few = self.settings["clusters"], [], []
        for name in names:
            layer = model.get_layer(name)
            weights = [getattr(layer, attr).numpy() for attr in ClusteringRegistry._LAYERS_WEIGHTS_MAP[type(layer)]]
            count = sum(int((w != 0).sum()) if self.preserve_sparsity else w.size for w in weights)
            if count >= clusters:
                kept.append(name)
            else:
                few.append(f"{name} ({count} weights for {clusters} clusters)")
        return kept, few

    def apply(self, model, upstream, steps):
        from edgecompress.train.models import wrap_layers

        api = clustering()
        candidates, self.unsupported = self.layers_of(model, upstream)
        self.layers, few = self.enough_weights(model, candidates)
        self.unsupported = [*self.unsupported, *few]
        init = getattr(api.CentroidInitialization, self.settings["init"].upper())  # kmeans_plus_plus -> KMEANS_...
        return wrap_layers(model, self.layers, lambda layer: api.cluster_weights(
            layer, number_of_clusters=self.settings["clusters"], cluster_centroids_init=init,
            preserve_sparsity=self.preserve_sparsity))

    def finish(self, model, train_images):
        return clustering().strip_clustering(model)

    def properties(self):
        return {"clustered_layers": self.layers, "clusters": self.settings["clusters"],
                "unsupported_layers": self.unsupported}


class ClusterSparse(Cluster):
    """The sparse chain's clustering: exactly the upstream's pruned layers, keeping their zeros at zero."""

    rules = fine_tuning(**CLUSTERING)
    preserve_sparsity = True

    def layers_of(self, model, upstream) -> tuple:
        return list(upstream.pruned_layers), list(upstream.unsupported_layers)

    def apply(self, model, upstream, steps):
        self.pruned = list(upstream.pruned_layers)  # still pruned, clustered or not
        return super().apply(model, upstream, steps)

    def properties(self):
        return {**super().properties(), "pruned_layers": self.pruned}


METHODS = {"cluster": Cluster, "cluster_sparse": ClusterSparse}
