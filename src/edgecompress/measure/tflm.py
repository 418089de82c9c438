"""TensorFlow Lite for Microcontrollers as a measured target: whether TFLM runs a .tflite, the tensor arena it
needs (its recording allocator's figures), the memory its DECODE ops need beside it, and its predictions with TFLM's
reference kernels.

Needs numpy, LiteRT's runner helpers and the tflite-micro package; no TensorFlow. The figures depend on the file and
TFLM's version, not on the host, so they are measured on the machine that runs the evaluation even when LiteRT's
are timed on a device.
"""
import re
from pathlib import Path

import numpy as np

from edgecompress.core.files import captured_stderr
from edgecompress.measure.runner import quantize, scaled

# the metrics of a file TFLM ran: whether it runs (else the fault, one line), its arena, flash and accuracy
MICRO_KEYS = ("tflm", "tflm_fault", "ram_bytes", "flash_bytes", "tflm_accuracy", "tflm_disagreements")
ARENA_FLOOR = 64 * 2**20  # bytes offered to the allocator (or 10x the file, if more); what it uses is recorded
ALIGNMENT = 16  # TFLM places every buffer on this boundary
ALLOCATION = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
DECODE = "TFLM_DECODE"  # the custom op TFLM's compressor inserts before each compressed tensor's use


def aligned(size: int) -> int:
    return -(-size // ALIGNMENT) * ALIGNMENT


def fault(printed: list, error: Exception) -> str:
    """One line naming why TFLM could not run a model: the op it lacks, else its last message, else the error."""
    missing = sorted({m.group(1) for line in printed if (m := MISSING_OP.search(line))})
    if missing:
        return f"TFLM has no kernel for {', '.join(missing)}"
    said = [line.strip() for line in printed if line.strip()]
    return said[-1] if said else f"{type(error).__name__}: {error}"


def _input(image, detail, input_range):
    """One test image as the model's input tensor, batch of one (runner.scaled, then runner.quantize)."""
    q = detail["quantization_parameters"]
    scale, zero_point = (q["scales"][0], q["zero_points"][0]) if len(q["scales"]) else (1.0, 0)
    return quantize(scaled(image, input_range), detail["dtype"], scale, zero_point)[None]


def decoded_tensors(data: bytes) -> list:
    """[(subgraph, encoded tensor index, decoded tensor index, decoded bytes)] of every DECODE op of a .tflite."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    return [(g, op.inputs[0].index, op.outputs[0].index, int(np.prod(op.outputs[0].shape)))
            for g, graph in enumerate(model_editor.read(data).subgraphs)
            for op in graph.operators if op.custom_code == DECODE]


def alt_memory_needed(data: bytes) -> int:
    """The alternate decompression memory that keeps every decoded kernel out of the arena: the largest one, aligned
    (TFLM decodes into it op after op; a byte less and it decodes into the arena again). 0 without DECODE ops."""
    return max((aligned(size) for *_, size in decoded_tensors(data)), default=0)


def measure(path, images, input_range=(0, 1), alt_memory: int = 0) -> dict:
    """Run the .tflite at `path` on TFLM over `images` (uint8 arrays, in order): {"runs": True, "arena": {"total",
    "head", "tail"} in bytes, "predictions"}, or {"runs": False, "fault": one line} where TFLM cannot run it.

    head: the tensors that live only during inference (activations, planned to overlap); tail: what persists
    (tensor structs, quantization parameters, kernels' buffers); total: head + tail, the arena a board needs.
    `alt_memory`: bytes of memory apart from the arena for the kernels DECODE ops write (0: they go in the arena).
    """
    from tflite_micro.python.tflite_micro import runtime

    data, printed = Path(path).read_bytes(), []
    try:
        with captured_stderr(printed):
            interpreter = runtime.Interpreter.from_bytes(data, arena_size=max(ARENA_FLOOR, 10 * len(data)),
                                                         alt_decompression_memory_size=alt_memory)
            inp = interpreter.get_input_details(0)
            predictions = []
            for image in images:
                interpreter.set_input(_input(image, inp, input_range), 0)
                interpreter.invoke()
                # the argmax of the quantized scores: dequantizing is monotone
                predictions.append(int(np.argmax(interpreter.get_output(0)[0])))
            interpreter.print_allocations()
    except (RuntimeError, ValueError) as error:
        return {"runs": False, "fault": fault(printed, error)}
    arena = {part: int(size) for line in printed if (m := ALLOCATION.search(line)) for part, size in [m.groups()]}
    if set(arena) != {"total", "head", "tail"}:
        return {"runs": False, "fault": "TFLM printed no arena figures (print_allocations)"}
    return {"runs": True, "arena": arena, "predictions": predictions}


def measure_file(path, images, input_range=(0, 1)) -> dict:
    """measure() over `images()` (a function that reads the test images afresh); for a file with DECODE ops also
    "alt_memory" (alt_memory_needed) and "arena_with_alt", the arena once the decoded kernels have that memory of their
    own (measured on the first image)."""
    result = measure(path, images(), input_range)
    alt = alt_memory_needed(Path(path).read_bytes()) if result["runs"] else 0
    if alt and (beside := measure(path, [next(iter(images()))], input_range, alt))["runs"]:
        result |= {"alt_memory": alt, "arena_with_alt": beside["arena"]}
    return result
