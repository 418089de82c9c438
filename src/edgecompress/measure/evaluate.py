"""Measure a model's .tflite files here or on a device, and turn the result into its metrics and details.

Imports no TensorFlow.
"""
import gzip
from pathlib import Path

from edgecompress.measure import compare, remote, runner, tflite_weights, tflm
from edgecompress.core.names import QUANTIZATIONS, TFLM_FOLDER, TFLM_ONLY
from edgecompress.core.record import TrainingRecord

SCALAR_KEYS = (
    "accuracy", "accuracy_ci95", "flips_lost", "flips_gained", "mcnemar_p", "macro_precision", "macro_recall",
    "size_bytes", "gzip_bytes", "latency_p50_ms", "latency_p50_ci95_ms", "latency_p90_ms", "latency_mean_ms",
    "total_s", "litert_ram_bytes", "sparsity", "max_distinct_per_channel",
)


def gzip_bytes(path) -> int:
    """Size of the file after gzip at its default level, 6 (as `gzip` and TFMOT's zip measurements compress): what a
    download or an OTA update costs. Level 9 saves at most 6% more and takes over ten times longer on pruned files."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0))


def measure(settings: dict, tflite_dir, test_dir, input_range=(0, 1), reference=None, reference_range=(0, 1)):
    """The runner's result for every .tflite in `tflite_dir`, on the machine that evaluate.device names, with
    pixels scaled onto the model's `input_range`, and the `reference` .tflite's predictions on the same images; and,
    under "micro", TFLM's result for every file of micro_files, measured here (on_microcontroller)."""
    protocol = (tflite_dir, test_dir, settings["threads"], settings["warmup"], settings["runs"], input_range,
                reference, reference_range)
    if settings["device"] == "local":
        run = runner.run_folder(*protocol)
    else:
        run = remote.Device(settings["device"], settings["python"], settings["connect_timeout"],
                            settings["run_timeout"], settings["ssh_options"]).run_folder(*protocol)
    return dict(run, micro=on_microcontroller(settings["micro"], tflite_dir, test_dir, input_range))


def micro_files(quantizations, tflite_dir) -> dict:
    """{variant: path} of what TFLM runs: each of `quantizations` (evaluate.micro) that `tflite_dir` holds, and each
    TFLM-only variant (tflite_dir/tflm/) made from one of them."""
    folder = Path(tflite_dir)
    candidates = {**{quant: folder / f"{quant}.tflite" for quant in quantizations},
                  **{variant: folder / TFLM_FOLDER / f"{variant}.tflite" for variant, source in TFLM_ONLY.items()
                     if source in quantizations}}
    return {variant: path for variant, path in candidates.items() if path.is_file()}


def on_microcontroller(quantizations, tflite_dir, test_dir, input_range=(0, 1)) -> dict:
    """tflm.measure_file of every micro_files variant on the test split: {variant: result with its "path"}."""
    split = runner.TestSplit(test_dir)
    return {variant: dict(tflm.measure_file(path, lambda: (image for image, _ in split), input_range), path=path)
            for variant, path in micro_files(quantizations, tflite_dir).items()}


def micro_metrics(result: dict, predictions, labels) -> dict:
    """The flat MICRO_KEYS of one TFLM result, against LiteRT's `predictions` of the same file (or of the file a
    TFLM-only variant was made from): flash is the file's bytes (a board stores the flatbuffer as it is), RAM the
    arena TFLM's recording allocator used; with DECODE ops, the alternate memory and the arena beside it too."""
    if not result["runs"]:
        return dict.fromkeys(tflm.MICRO_KEYS) | {"tflm": False, "tflm_fault": result["fault"]}
    on_micro = result["predictions"]
    metrics = {"tflm": True, "tflm_fault": None, "ram_bytes": result["arena"]["total"],
               "flash_bytes": Path(result["path"]).stat().st_size,
               "tflm_accuracy": sum(p == y for p, y in zip(on_micro, labels)) / max(len(labels), 1),
               "tflm_disagreements": sum(p != q for p, q in zip(on_micro, predictions))}
    if "alt_memory" in result:
        metrics |= {"alt_memory_bytes": result["alt_memory"], "ram_bytes_with_alt": result["arena_with_alt"]["total"]}
    return metrics


def micro_line(variant: str, m: dict) -> str:
    """What TFLM measured of one file, from its metrics, in one line."""
    if not m["tflm"]:
        return f"{variant} on TensorFlow Lite Micro does not run: {m['tflm_fault']}"
    line = (f"{variant} on TensorFlow Lite Micro: arena {m['ram_bytes']:,} bytes, flash {m['flash_bytes']:,} bytes, "
            f"accuracy {m['tflm_accuracy']:.4f} ({m['tflm_disagreements']} images predicted otherwise than by LiteRT)")
    if "alt_memory_bytes" in m:
        line += (f"; the decoded kernels in {m['alt_memory_bytes']:,} bytes of their own leave an arena of "
                 f"{m['ram_bytes_with_alt']:,} bytes")
    return line


def summarize(run: dict, tflite_dir, record: TrainingRecord, class_names):
    """Split a runner result into (metrics, details): flat per-quantization scalars, per-class and per-layer tables,
    and every test image's label and predicted class.

    Sparsity and distinct values per channel are read from each .tflite; distinct values are counted over the
    clustered layers that `record` names, if any, else over every kernel. The accuracy's interval and the flips
    against the run's reference predictions: edgecompress.measure.compare. TFLM's figures: micro_metrics.
    """
    metrics = {"params_count": record.params_count, "macs": record.macs}
    details = {"device": run["device"], "protocol": run["protocol"], "classes": class_names,
               "training": record.as_dict(), "labels": run["labels"], "models": {}}
    for quant in sorted(run["models"], key=QUANTIZATIONS.index):
        path, predictions = Path(tflite_dir) / f"{quant}.tflite", run["models"][quant]["predictions"]
        correct = sum(p == y for p, y in zip(predictions, run["labels"]))
        weights = tflite_weights.inspect(path, record.clustered_layers or None)
        result = dict(run["models"][quant], gzip_bytes=gzip_bytes(path), sparsity=weights["sparsity"],
                      max_distinct_per_channel=weights["max_distinct_per_channel"],
                      accuracy_ci95=compare.wilson_interval(correct, len(predictions)),
                      **compare.flips(run["reference"], predictions, run["labels"]))
        metrics[quant] = {key: result[key] for key in SCALAR_KEYS}
        details["models"][quant] = {
            "weights": weights["layers"],
            "precision": dict(zip(class_names, result["precision"])),
            "recall": dict(zip(class_names, result["recall"])),
            "confusion": result["confusion"],
            "predictions": predictions,
        }
    details["micro"] = {}
    for variant, micro in run["micro"].items():
        source = TFLM_ONLY.get(variant, variant)
        if variant != source:  # a TFLM-only variant: its file's sizes beside TFLM's figures
            metrics[variant] = {"size_bytes": micro["path"].stat().st_size, "gzip_bytes": gzip_bytes(micro["path"])}
        metrics[variant] |= micro_metrics(micro, run["models"][source]["predictions"], run["labels"])
        details["micro"][variant] = {"source": source} | {
            key: micro[key] for key in ("arena", "arena_with_alt", "predictions") if key in micro}
    metrics["protocol"] = dict(run["protocol"])
    metrics["device"] = dict(run["device"])
    return metrics, details
