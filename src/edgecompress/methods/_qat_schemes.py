"""TFMOT's quantization-aware training schemes (plain, and PQAT / CQAT / PCQAT's collaborative ones) and `quantize`,
which applies one; the cluster-preserving registry gives each layer its own weight quantizer."""
import copy
import re

from edgecompress.core.backend import tfmot
from edgecompress.core.errors import UserError
from edgecompress.methods import _cluster_kernels  # noqa: F401  (cluster-preserving QAT searches centroids too)
from tf_keras.src.backend import get_default_graph_uid_map
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (  # after backend
    cluster_preserve_quantize_registry as cluster_preserve,
)

quantization = tfmot.quantization.keras
combine = tfmot.experimental.combine
UNSUPPORTED = re.compile(r"Layer (\S+):<class '[\w.]*?(\w+)'> is not supported")  # TFMOT's refusal of a layer


class _PerLayerClusterPreserveRegistry(cluster_preserve.Default8bitClusterPreserveQuantizeRegistry):
    """TFMOT's cluster-preserve registry with one weight quantizer per layer instead of one shared by all.

    TFMOT's quantizer turns its own `preserve_sparsity` off when it meets a layer without zeros (here the
    dense stem and classifier); shared, that switches sparsity preservation off for every later layer too.
    """

    def get_quantize_config(self, layer):
        config = super().get_quantize_config(layer)
        if hasattr(config, "weight_quantizer"):
            config.weight_quantizer = copy.copy(config.weight_quantizer)
        return config


class _ClusterPreserveScheme(combine.Default8BitClusterPreserveQuantizeScheme):
    def get_quantize_registry(self):
        return _PerLayerClusterPreserveRegistry(self.preserve_sparsity)


SCHEMES = {  # what the QAT keeps of its upstream model -> TFMOT scheme
    "none": quantization.default_8bit.Default8BitQuantizeScheme,
    "sparsity": combine.Default8BitPrunePreserveQuantizeScheme,
    "clusters": lambda: _ClusterPreserveScheme(preserve_sparsity=False),
    "clusters_and_sparsity": lambda: _ClusterPreserveScheme(preserve_sparsity=True),
}


def reserve_layer_names(model) -> None:
    """Move Keras's automatic layer names past every name in `model`, so that a layer created unnamed (TFMOT splits
    a SeparableConv2D into a DepthwiseConv2D and a Conv2D) cannot take the name of one of its layers.

    A model loaded from a file keeps names such as `conv2d` that this process never counted: TFMOT's new `conv2d`
    then replaces the user's when it rebuilds the model.
    """
    counters = get_default_graph_uid_map()  # {(namespace, base name): the next number to append}
    for layer in model.submodules:
        base, _, number = layer.name.rpartition("_")
        base, count = (base, int(number) + 1) if base and number.isdigit() else (layer.name, 1)
        counters["", base] = max(counters["", base], count)


def quantize(model, preserve: str = "none"):
    """A quantization-aware copy of `model` (fake int8 weights and activations) under the chosen scheme.

    A layer that TFMOT cannot quantize is a UserError naming it and its type.
    """
    reserve_layer_names(model)
    try:
        return quantization.quantize_apply(quantization.quantize_annotate_model(model), SCHEMES[preserve]())
    except RuntimeError as err:
        refused = UNSUPPORTED.search(str(err))
        if refused is None:
            raise
        name, kind = refused.groups()
        raise UserError(f"QAT cannot quantize layer {name!r} ({kind}) of {model.name}; replace that layer with "
                        "one TFMOT quantizes, or leave the QAT stages out (convert's post-training int8 needs no "
                        "QAT)") from None
