"""Classifiers from the architecture registry (edgecompress.train.architectures) with one head, loading, layer choice.

The head is a linear `logits` Dense followed by a separate softmax, so logits stay reachable for distillation.
"""
import re

import numpy as np

from edgecompress.train.architectures import BUILDERS
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError
from edgecompress.core.names import MIN_IMAGE_SIZE

layers = keras.layers
# what QAT wrappers add beside the weights: ranges, step counters, the cluster-preserving quantizer's state
QAT_STATE = re.compile(r"(_min|_max|optimizer_step|cluster_centroids_tf|ori_weights_vars_tf|pulling_indices_tf):0$")


def build(architecture: str, input_shape, num_classes: int, width: float, input_size: int = None) -> keras.Model:
    """An untrained classifier for images of `input_shape`; with `input_size` it first resizes them to that square."""
    if architecture not in BUILDERS:
        raise UserError(f"unknown architecture {architecture!r}; known: {', '.join(BUILDERS)}")
    size = input_size if input_size is not None else min(input_shape[:2])
    if size < MIN_IMAGE_SIZE:
        raise UserError(f"{architecture} needs inputs of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}, got {size}x{size}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs if input_size is None else layers.Resizing(input_size, input_size, name="resize")(inputs)
    logits = layers.Dense(num_classes, name="logits")(BUILDERS[architecture](x, width))
    return keras.Model(inputs, layers.Activation("softmax", name="softmax")(logits), name=architecture)


def count_parameters(model) -> int:
    """Every weight of `model` (trainable or not, as count_params), less the state QAT wrappers add (QAT_STATE)."""
    return sum(int(np.prod(w.shape)) for w in model.weights if not QAT_STATE.search(w.name))


def is_softmax(layer) -> bool:
    """Whether `layer` is a separate softmax (an Activation or a Softmax layer)."""
    return isinstance(layer, layers.Softmax) or (
        isinstance(layer, layers.Activation) and getattr(layer.activation, "__name__", None) == "softmax")


def logits(model):
    """The tensor that `model`'s final softmax layer takes: its logits."""
    return model.layers[-1].input


def load(path, quantization_aware: bool = False) -> keras.Model:
    """Load a model saved by a stage (a SavedModel folder) back into Keras, uncompiled; a quantization-aware one
    with TFMOT's layers in scope."""
    if not quantization_aware:
        return keras.models.load_model(path, compile=False)
    from edgecompress.core.backend import tfmot

    with tfmot.quantization.keras.quantize_scope():
        return keras.models.load_model(path, compile=False)


SYMBOLIC_LAYERS = {"first": 0, "last": -1}  # skip-list names that fit any model: its first and last layer with a kernel


def has_kernel(layer) -> bool:
    """Whether `layer` holds a kernel of any kind (depthwise, pointwise, a nested model's)."""
    return any("kernel" in weight.name for weight in layer.weights)


def layer_names(model, names, param: str) -> list:
    """The layers of `model` that `names` (a skip list, `param`) means: `first` and `last` are its first and last
    layer with a kernel unless a layer bears that name; any other name must be one of its layers."""
    kernels = [layer.name for layer in model.layers if has_kernel(layer)]
    known = {layer.name for layer in model.layers}
    found = []
    for name in names:
        if name not in known and name in SYMBOLIC_LAYERS and kernels:
            name = kernels[SYMBOLIC_LAYERS[name]]
        elif name not in known:
            raise UserError(f"params: {param} names {name!r}, which is not a layer of {model.name}; expected "
                            f"{' or '.join(SYMBOLIC_LAYERS)}, or a layer with a kernel: {', '.join(kernels)}")
        if name not in found:
            found.append(name)
    return found


def select_layers(model, skip, compresses, supports) -> tuple:
    """(layers to wrap, layers left as they are) of `model` for a TFMOT method, by name.

    `compresses(layer)`: the method has weights of the layer to work on; `supports(layer)`: it can wrap the layer
    at all. Layers in `skip` (names of `model`'s layers) are not wrapped. Left as they are: "name (Type)" of every
    layer with weights that the method cannot wrap.
    """
    unsupported = [f"{layer.name} ({type(layer).__name__})" for layer in model.layers
                   if layer.trainable_weights and not supports(layer)]
    return [layer.name for layer in model.layers if compresses(layer) and layer.name not in skip], unsupported


def wrap_layers(model, names, wrap) -> keras.Model:
    """A copy of `model` whose layers named in `names` are replaced by `wrap(layer)`; others keep their weights."""
    names = set(names)
    return keras.models.clone_model(model, clone_function=lambda l: wrap(l) if l.name in names else l)
