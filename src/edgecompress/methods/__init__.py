"""Compression methods, one module each behind `methods.base.Method`, by the params section that sets them."""
from functools import partial

from edgecompress.methods.clustering import Cluster, ClusterSparse
from edgecompress.methods.filter_pruning import FilterPrune
from edgecompress.methods.knowledge_distillation import DistillFineTune
from edgecompress.methods.low_rank import LowRank
from edgecompress.methods.pruning import Prune
from edgecompress.methods.quantization import QuantizationAware

METHODS = {
    "prune": Prune,
    "cluster": Cluster,
    "cluster_sparse": ClusterSparse,
    "qat": partial(QuantizationAware, preserve="none"),
    "pqat": partial(QuantizationAware, preserve="sparsity"),
    "cqat": partial(QuantizationAware, preserve="clusters"),
    "pcqat": partial(QuantizationAware, preserve="clusters_and_sparsity"),
    "filter_prune": FilterPrune,
    "filter_prune_kd": DistillFineTune,
    "lowrank": LowRank,
}


def create(name: str, settings: dict):
    """The method `name` (a key of METHODS) configured by its validated params section."""
    return METHODS[name](settings)
