"""Standalone TF Lite benchmark runner: accuracy, per-class precision / recall and latency per image.

Needs only numpy and a LiteRT interpreter (ai_edge_litert, or tflite_runtime on older boards), so the
same file runs locally and on a remote device:
    python runner.py MODEL_DIR TEST_DIR OUT_JSON [--threads N] [--warmup N] [--runs N] [--input-range LOW HIGH]
                     [--reference FILE --reference-range LOW HIGH]
"""
import argparse
import itertools
import json
import math
import platform
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter
    import ai_edge_litert as _runtime
except ImportError:  # Raspberry Pi OS images often ship tflite_runtime instead
    from tflite_runtime.interpreter import Interpreter
    import tflite_runtime as _runtime


def scaled(image, input_range):
    """uint8 pixels onto the float range (low, high) the model was trained on: edgecompress.data.scale's rule."""
    low, high = input_range
    return image.astype(np.float32) / 255.0 * (high - low) + low


def quantize(x, dtype, scale: float, zero_point: int):
    """Map float input onto a model's input type (identity for float models)."""
    if dtype == np.float32:
        return x
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(y, detail):
    if detail["dtype"] == np.float32:
        return y
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale


def _cycle(make):
    """The items of make() again and again (warm-up on a split smaller than the warm-up count)."""
    while True:
        yield from make()


def median_interval(samples, confidence: float = 0.95) -> list:
    """A distribution-free interval [low, high] for the median of `samples` from their order statistics: the ranks
    between which the median lies with probability `confidence` if the samples are independent draws (Binomial(n,
    1/2) tails, computed exactly); a bound is None where too few samples give one (under 6 at 95%)."""
    ordered, n = sorted(samples), len(samples)
    if n == 0:
        return [None, None]
    millionths = round((1 - confidence) / 2 * 10**6)  # each tail's chance, so that the sums below stay integers
    tail, whole, cumulative, low = 2**n * millionths, 2**n * 10**6, 0, None
    for k in range(n + 1):  # cumulative / 2**n: P(Binomial(n, 1/2) <= k)
        cumulative += math.comb(n, k)
        if low is None and cumulative * 10**6 >= tail:
            low = k - 1
        if cumulative * 10**6 >= whole - tail:
            return [ordered[low] if low >= 0 else None, ordered[k] if k < n else None]


def per_class(y_true, y_pred, num_classes: int):
    """Precision, recall and the confusion matrix (rows: true class, columns: predicted class)."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    return precision, recall, confusion


class TestSplit:
    """The test split that edgecompress prepared: TFRecord shards of records (an int64 label, little-endian, then
    the uint8 pixels) named in split.json, read one record at a time with numpy alone."""

    def __init__(self, folder):
        self.folder = Path(folder)
        card = json.loads((self.folder / "split.json").read_text())
        self.shape, self.shards, self.count = tuple(card["image_shape"]), card["shards"], card["count"]

    def __iter__(self):
        """(uint8 image, label) per record, in the order written."""
        for name in self.shards:
            with open(self.folder / name, "rb") as shard:
                while header := shard.read(12):  # TFRecord framing: uint64 length, its CRC; data, its CRC
                    record = shard.read(struct.unpack("<Q", header[:8])[0])
                    shard.read(4)
                    yield np.frombuffer(record, np.uint8, offset=8).reshape(self.shape), int.from_bytes(
                        record[:8], "little", signed=True)


def _status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (RssAnon: resident anonymous memory), in bytes."""
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":"))


def memory_added(path, threads: int = 1) -> int:
    """The anonymous memory that loading the .tflite, allocating its tensors and one invoke add to this process, plus
    the file's bytes (LiteRT maps it): what litert_memory runs in a fresh process."""
    before = _status_bytes("RssAnon")
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    interpreter.invoke()
    return _status_bytes("RssAnon") - before + Path(path).stat().st_size


def litert_memory(path, threads: int = 1, timeout: int = 600):
    """The RAM (bytes) a device needs for the .tflite in LiteRT beyond the runtime's code: its arena, tensors and
    XNNPACK's packed weights after one invoke, and the mapped file (memory_added), measured in a fresh Python process
    (a forked one would reuse memory that its parent had freed). None, with a line on stderr saying why, where that
    fails (no Linux /proc)."""
    here = Path(__file__).resolve().parent  # run as a top-level module: the same file works on a device
    result = subprocess.run([sys.executable, "-c", "import sys, runner; print(runner.memory_added(sys.argv[1], "
                             "int(sys.argv[2])))", str(Path(path).resolve()), str(threads)],
                            cwd=here, capture_output=True, text=True, timeout=timeout)
    if result.returncode == 0:
        return int(result.stdout.split()[-1])
    said = result.stderr.strip().splitlines()
    print(f"runner: LiteRT's RAM for {path} not measured: {said[-1] if said else result.returncode}", file=sys.stderr)
    return None


def run_model(path, split: TestSplit, threads: int = 1, warmup: int = 10, runs: int = 1, input_range=(0, 1)):
    """Run one .tflite on every test image, batch size 1, after `warmup` untimed runs, `runs` timed passes.

    Pixels are scaled onto `input_range` (low, high) as in training: edgecompress.data.scale.

    Latency per image times invoke() alone, as TF Lite's benchmark_model does, over every pass; its p50's 95%
    interval treats every timed invoke (images x passes) as one draw (median_interval). total_s is one pass over the
    test split including reading, input quantization and output reading (the mean over passes). `predictions`: the
    class predicted for each test image, in the split's order.
    """
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def inputs():
        for image, label in split:
            yield quantize(scaled(image, input_range), inp["dtype"], *inp["quantization"])[None], label

    for x, _ in itertools.islice(_cycle(inputs), warmup if split.count else 0):
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
    latencies, totals = np.empty((runs, split.count)), np.empty(runs)
    predictions, y = np.empty(split.count, dtype=np.int64), np.empty(split.count, dtype=np.int64)
    for run in range(runs):
        pass_start = time.perf_counter()
        for i, (x, label) in enumerate(inputs()):
            interpreter.set_tensor(inp["index"], x)
            start = time.perf_counter()
            interpreter.invoke()
            latencies[run, i] = time.perf_counter() - start
            predictions[i], y[i] = int(np.argmax(_dequantize(interpreter.get_tensor(out["index"])[0], out))), label
        totals[run] = time.perf_counter() - pass_start
    num_classes = int(out["shape"][-1])
    precision, recall, confusion = per_class(y, predictions, num_classes)
    return {
        "accuracy": float((predictions == y).mean()),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "size_bytes": Path(path).stat().st_size,
        "latency_p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "latency_p90_ms": float(np.percentile(latencies, 90) * 1e3),
        "latency_p50_ci95_ms": [t and t * 1e3 for t in median_interval(latencies.ravel().tolist())],
        "latency_mean_ms": float(latencies.mean() * 1e3),
        "total_s": float(totals.mean()),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "confusion": confusion.tolist(),
        "predictions": predictions.tolist(),
    }


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo ("model name" on x86, "Model" on a Raspberry Pi), else platform's."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    named = fields.get("model name") or fields.get("Model") or fields.get("Hardware")
    return named or platform.processor() or "unknown"


def device_facts() -> dict:
    return {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "runtime": f"{_runtime.__name__} {getattr(_runtime, '__version__', 'unknown')}",
    }


def run_folder(model_dir, test_dir, threads: int = 1, warmup: int = 10, runs: int = 1, input_range=(0, 1),
               reference=None, reference_range=(0, 1)) -> dict:
    """Benchmark every .tflite in `model_dir` (named <quantization>.tflite) on the test split in `test_dir`, with the
    RAM LiteRT needs for it (litert_memory); with the test labels and, if a `reference` .tflite is given, its
    predictions (pixels on `reference_range`), untimed."""
    split = TestSplit(test_dir)
    results = {
        path.stem: dict(run_model(path, split, threads, warmup, runs, input_range),
                        litert_ram_bytes=litert_memory(path, threads))
        for path in sorted(Path(model_dir).glob("*.tflite"))
    }
    protocol = {"threads": threads, "warmup": warmup, "runs": runs, "batch_size": 1, "images": split.count}
    run = {"device": device_facts(), "protocol": protocol, "models": results, "labels": [y for _, y in split]}
    if reference:
        run["reference"] = run_model(reference, split, threads, 0, 1, reference_range)["predictions"]
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("test_dir")
    parser.add_argument("out_json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--input-range", type=float, nargs=2, default=(0.0, 1.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--reference", help="a .tflite whose predictions to record beside the models'")
    parser.add_argument("--reference-range", type=float, nargs=2, default=(0.0, 1.0), metavar=("LOW", "HIGH"))
    args = parser.parse_args()
    result = run_folder(args.model_dir, args.test_dir, args.threads, args.warmup, args.runs, args.input_range,
                        args.reference, args.reference_range)
    tmp = Path(args.out_json + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(args.out_json)


if __name__ == "__main__":
    main()
