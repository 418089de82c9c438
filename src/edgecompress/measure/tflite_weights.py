"""Read the kernels back out of a .tflite file: sparsity and distinct values per output channel, per layer.

Imports no TensorFlow. Kernels are the weight inputs of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED ops,
followed through a DEQUANTIZE op where the file stores them in float16 or int8. Output channels are axis 0
(axis 3 for depthwise kernels), the axis TF Lite quantizes per channel along.
"""
import numpy as np

from edgecompress.measure.runner import Interpreter

WEIGHT_OPS = {"CONV_2D": 0, "FULLY_CONNECTED": 0, "DEPTHWISE_CONV_2D": 3}


def layer_name(tensor_name: str) -> str:
    """The Keras layer a tensor came from: 'resnet18/quant_stage1_block1_a_conv/Conv2D;...' -> 'stage1_block1_a_conv'."""
    parts = tensor_name.split(";")[0].split("/")
    name = parts[1] if len(parts) > 1 else parts[0]
    return name.removeprefix("quant_")


def kernels(path):
    """[(layer name, kernel array with output channels first)] for every weighted op, in graph order."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()  # the interpreter's op table: the only graph view LiteRT exposes
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    # the graph's own producers: a delegate node (XNNPACK) also lists the tensors it computes, DEQUANTIZE outputs too
    producer = {int(out): op for op in ops if op["op_name"] != "DELEGATE" for out in op["outputs"]}
    found = []
    for op in ops:
        if op["op_name"] not in WEIGHT_OPS:
            continue
        index = int(op["inputs"][1])
        if index in producer and producer[index]["op_name"] == "DEQUANTIZE":
            index = int(producer[index]["inputs"][0])
        kernel = np.moveaxis(interpreter.get_tensor(index), WEIGHT_OPS[op["op_name"]], 0)
        found.append((layer_name(tensors[index]["name"]), kernel))
    return found


def inspect(path, layers=None) -> dict:
    """Per-layer and total sparsity, and the most distinct values in any output channel.

    The total `max_distinct_per_channel` is taken over `layers` (for example the clustered ones) when given and
    found in the file, else over every kernel (QAT renames the parts of a SeparableConv2D); `sparsity` is always
    over every kernel's weights.
    """
    per_layer, zeros, total = {}, 0, 0
    for name, kernel in kernels(path):
        flat = kernel.reshape(len(kernel), -1)
        per_layer[name] = {
            "weights": int(flat.size),
            "sparsity": float((flat == 0).mean()),
            "max_distinct_per_channel": int(max(len(np.unique(channel)) for channel in flat)),
        }
        zeros, total = zeros + int((flat == 0).sum()), total + int(flat.size)
    counted = [per_layer[n] for n in per_layer if layers is not None and n in layers] or per_layer.values()
    return {
        "sparsity": zeros / total,
        "max_distinct_per_channel": max(layer["max_distinct_per_channel"] for layer in counted),
        "layers": per_layer,
    }
