"""The int8 .tflite with its kernels stored as look-up tables by TensorFlow Lite Micro's own compressor, which
inserts a DECODE op before each: few values per channel (clustering's) in a few bits each. Only TFLM runs it.

Needs only numpy and the tflite-micro package.
"""
import math
import warnings

import numpy as np

KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")  # their input 1 is the kernel


def lut_specs(model) -> list:
    """TFLM compression specs for every int8 kernel (of a model_editor.Model) that look-up tables store in fewer
    bytes: indices of the fewest bits that number its distinct values, plus one table per output channel (per
    quantization channel; one for a kernel quantized per tensor)."""
    from tflite_micro.tensorflow.lite.micro.compression import spec
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    codes = {getattr(schema.BuiltinOperator, name) for name in KERNEL_OPS}
    specs = []
    for graph_index, graph in enumerate(model.subgraphs):
        for op in graph.operators:
            kernel = op.inputs[1] if op.opcode in codes else None
            if kernel is None or kernel.buffer is None or kernel.array is None or kernel.array.dtype != np.int8:
                continue
            axis = kernel.quantization.axis if kernel.quantization else None  # None: quantized per tensor
            tables = [kernel.array] if axis is None else np.moveaxis(kernel.array, axis, 0)
            bits = max(1, math.ceil(math.log2(max(len(np.unique(values)) for values in tables))))
            if math.ceil(kernel.array.size * bits / 8) + len(tables) * 2**bits < kernel.array.size:
                mode = spec.PerTensor() if axis is None else spec.PerChannel(axis)
                specs.append(spec.Tensor(graph_index, kernel.index, [spec.LookUpTableCompression(bits, mode)]))
    return specs


def lut_variant(int8_file: bytes):
    """The int8 .tflite with every kernel that shrinks stored as look-up tables, or None where the file as a whole
    would not be smaller (the DECODE ops and their tables cost bytes too)."""
    from tflite_micro.tensorflow.lite.micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    specs = lut_specs(model_editor.read(int8_file))
    if not specs:
        return None
    with warnings.catch_warnings():  # it warns of a tensor that grows; lut_specs keeps only those that shrink
        warnings.simplefilter("ignore")
        compressed = bytes(compression.compress(int8_file, specs))
    return compressed if len(compressed) < len(int8_file) else None
