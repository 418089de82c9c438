"""Multiply-accumulates per image, counted from a Keras model's graph.

Each convolution or Dense layer costs the size of its kernel once per output position: Conv2D k*k*c_in*c_out,
DepthwiseConv2D k*k*c, SeparableConv2D both of its kernels, Dense c_in*c_out. BatchNorm (folded by the converter),
activations, pooling and adds are not multiply-accumulates and are not counted. A kernel of zeros (magnitude
pruning) is still multiplied: its MACs are those of its dense shape.
"""
import numpy as np

KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")  # the weights that multiply activations


def _positions(output_shape) -> int:
    """Output positions per image: every axis of the output but the batch and the channels."""
    return int(np.prod(output_shape[1:-1]))


def count(model) -> int:
    """MACs of one image through `model`; TFMOT wrappers are counted as the layer they wrap, nested models inside."""
    total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # prune, cluster and QAT wrappers keep the wrapped layer here
        if hasattr(inner, "layers"):
            total += count(inner)
            continue
        kernels = [getattr(inner, name) for name in KERNELS if getattr(inner, name, None) is not None]
        if kernels:
            total += sum(int(np.prod(k.shape)) for k in kernels) * _positions(layer.output_shape)
    return total
