"""Measure a model's .tflite files here or on a device, and turn the result into its metrics and details.

Imports no TensorFlow.
"""
import gzip
from pathlib import Path

from edgecompress.measure import compare, remote, runner, tflite_weights
from edgecompress.core.names import QUANTIZATIONS
from edgecompress.core.record import TrainingRecord

SCALAR_KEYS = (
    "accuracy", "accuracy_ci95", "flips_lost", "flips_gained", "mcnemar_p", "macro_precision", "macro_recall",
    "size_bytes", "gzip_bytes", "latency_p50_ms", "latency_p50_ci95_ms", "latency_p90_ms", "latency_mean_ms",
    "total_s", "sparsity", "max_distinct_per_channel",
)


def gzip_bytes(path) -> int:
    """Size of the file after gzip at its default level, 6 (as `gzip` and TFMOT's zip measurements compress): what a
    download or an OTA update costs. Level 9 saves at most 6% more and takes over ten times longer on pruned files."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0))


def measure(settings: dict, tflite_dir, test_dir, input_range=(0, 1), reference=None, reference_range=(0, 1)):
    """The runner's result for every .tflite in `tflite_dir`, on the machine that evaluate.device names, with
    pixels scaled onto the model's `input_range`, and the `reference` .tflite's predictions on the same images."""
    protocol = (tflite_dir, test_dir, settings["threads"], settings["warmup"], settings["runs"], input_range,
                reference, reference_range)
    if settings["device"] == "local":
        return runner.run_folder(*protocol)
    device = remote.Device(settings["device"], settings["python"], settings["connect_timeout"],
                           settings["run_timeout"], settings["ssh_options"])
    return device.run_folder(*protocol)


def summarize(run: dict, tflite_dir, record: TrainingRecord, class_names):
    """Split a runner result into (metrics, details): flat per-quantization scalars, per-class and per-layer tables,
    and every test image's label and predicted class.

    Sparsity and distinct values per channel are read from each .tflite; distinct values are counted over the
    clustered layers that `record` names, if any, else over every kernel. The accuracy's interval and the flips
    against the run's reference predictions: edgecompress.measure.compare.
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
    metrics["protocol"] = dict(run["protocol"])
    metrics["device"] = dict(run["device"])
    return metrics, details
