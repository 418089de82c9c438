"""TensorFlow Lite for Microcontrollers as a measured target: whether TFLM runs a .tflite, the tensor arena it
needs (its recording allocator's figures) and its predictions with TFLM's reference kernels; and the variant only
TFLM runs, int8 kernels stored as look-up tables by TFLM's own compressor.

Needs only numpy and the tflite-micro package. The figures depend on the model and TFLM's version, not on the
host, so they are measured on the machine that runs the evaluation even when LiteRT's run on a device.
"""
import contextlib
import math
import os
import re
import tempfile
import warnings

import numpy as np

ARENA_FLOOR = 64 * 2**20  # bytes offered to the allocator (or 10x the file, if more); what it uses is recorded
ALIGNMENT = 16  # TFLM places every buffer on this boundary
ALLOCATION = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
FOLDER = "tflm"  # in a model's tflite folder: the variants LiteRT cannot run (it has no DECODE op)
LUT, LUT_SOURCE = "int8_lut", "int8"  # the int8 file with its kernels as per-channel look-up tables, DECODE ops
SOURCES = {LUT: LUT_SOURCE}  # each TFLM-only variant and the file LiteRT runs that it was made from
KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")  # their input 1 is the kernel
DECODE = "TFLM_DECODE"


@contextlib.contextmanager
def native_stderr(lines: list):
    """Collect what native code writes to file descriptor 2 (TFLM's MicroPrintf) into `lines`."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def fault(printed: list, error: Exception) -> str:
    """One line naming why TFLM could not run a model: the op it lacks, else its last message, else the error."""
    missing = sorted({m.group(1) for line in printed if (m := MISSING_OP.search(line))})
    if missing:
        return f"TFLM has no kernel for {', '.join(missing)}"
    said = [line.strip() for line in printed if line.strip()]
    return said[-1] if said else f"{type(error).__name__}: {error}"


def _scale(image, detail, input_range):
    """uint8 pixels onto the model's float range, then onto its input type (runner._quantize's rule)."""
    low, high = input_range
    x = image.astype(np.float32) / 255.0 * (high - low) + low
    if detail["dtype"] == np.float32:
        return x[None]
    scale, zero_point = detail["quantization_parameters"]["scales"][0], detail["quantization_parameters"][
        "zero_points"][0]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(detail["dtype"])[None]


def aligned(size: int) -> int:
    return -(-size // ALIGNMENT) * ALIGNMENT


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
            tables = ([kernel.array] if axis is None else np.moveaxis(kernel.array, axis, 0))
            bits = max(1, math.ceil(math.log2(max(len(np.unique(values)) for values in tables))))
            if math.ceil(kernel.array.size * bits / 8) + len(tables) * 2**bits < kernel.array.size:
                mode = spec.PerTensor() if axis is None else spec.PerChannel(axis)
                specs.append(spec.Tensor(graph_index, kernel.index, [spec.LookUpTableCompression(bits, mode)]))
    return specs


def lut_variant(int8_file: bytes):
    """The int8 .tflite with every kernel that shrinks stored as look-up tables (TFLM's compressor, which inserts a
    DECODE op before each), or None where no kernel would shrink."""
    from tflite_micro.tensorflow.lite.micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    specs = lut_specs(model_editor.read(int8_file))
    if not specs:
        return None
    with warnings.catch_warnings():  # it warns of a tensor that grows; lut_specs keeps only those that shrink
        warnings.simplefilter("ignore")
        return bytes(compression.compress(int8_file, specs))


def decoded_tensors(data: bytes) -> list:
    """[(encoded tensor index, decoded tensor index, decoded bytes)] of every DECODE op of a .tflite."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    graph = model_editor.read(data).subgraphs[0]
    return [(op.inputs[0].index, op.outputs[0].index, int(np.prod(op.outputs[0].shape)))
            for op in graph.operators if op.custom_code == DECODE]


def alt_memory_needed(data: bytes) -> int:
    """The alternate decompression memory that keeps every decoded kernel out of the arena: the largest one, aligned
    (TFLM decodes into it op after op; a byte less and it decodes into the arena again)."""
    return max((aligned(size) for *_, size in decoded_tensors(data)), default=0)


def measure(path, images, input_range=(0, 1), alt_memory: int = 0) -> dict:
    """Run the .tflite at `path` on TFLM over `images` (uint8 arrays, in order): {"runs": True, "arena": {"total",
    "head", "tail"} in bytes, "predictions"}, or {"runs": False, "fault": one line} where TFLM cannot run it.

    head: the tensors that live only during inference (activations, planned to overlap); tail: what persists
    (tensor structs, quantization parameters, kernels' buffers); total: head + tail, the arena a board needs.
    `alt_memory`: bytes of memory apart from the arena for the kernels DECODE ops write (0: they go in the arena).
    """
    from tflite_micro.python.tflite_micro import runtime

    data, printed = open(path, "rb").read(), []
    try:
        with native_stderr(printed):
            interpreter = runtime.Interpreter.from_bytes(data, arena_size=max(ARENA_FLOOR, 10 * len(data)),
                                                         alt_decompression_memory_size=alt_memory)
            inp, out = interpreter.get_input_details(0), interpreter.get_output_details(0)
            predictions = []
            for image in images:
                interpreter.set_input(_scale(image, inp, input_range), 0)
                interpreter.invoke()
                y = interpreter.get_output(0)[0].astype(np.float32)
                predictions.append(int(np.argmax(y)))  # the quantized scores' argmax: a monotone map of the floats
            interpreter.print_allocations()
    except (RuntimeError, ValueError) as error:
        return {"runs": False, "fault": fault(printed, error)}
    arena = {part: int(size) for line in printed if (m := ALLOCATION.search(line)) for part, size in [m.groups()]}
    return {"runs": True, "arena": arena, "predictions": predictions}


def measure_file(path, images, input_range=(0, 1)) -> dict:
    """measure(); for a file with DECODE ops also "alt_memory" (alt_memory_needed) and "arena_with_alt", the arena
    once the decoded kernels have that memory of their own (measured on the first image)."""
    images = list(images)
    result = measure(path, images, input_range)
    if result["runs"] and (alt := alt_memory_needed(open(path, "rb").read())):
        result |= {"alt_memory": alt, "arena_with_alt": measure(path, images[:1], input_range, alt)["arena"]}
    return result
