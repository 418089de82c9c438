"""Turn a runner result into the metrics file and the details file of one model. Imports no TensorFlow."""
import gzip
from pathlib import Path

from edgecompress import tflite_weights

QUANT_ORDER = ("fp32", "fp16", "dynamic", "int8", "int16x8")
SCALAR_KEYS = (
    "accuracy", "macro_precision", "macro_recall", "size_bytes", "gzip_bytes",
    "latency_p50_ms", "latency_p90_ms", "latency_mean_ms", "total_s", "sparsity", "max_distinct_per_channel",
)


def gzip_bytes(path) -> int:
    """Size of the file after gzip at maximum compression: what a download or an OTA update costs."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


def summarize(run: dict, model_dir, train_record: dict, class_names):
    """Split a runner result into (metrics, details): flat per-quantization scalars, per-class and per-layer tables.

    Sparsity and distinct values per channel are read from each .tflite; distinct values are counted over the
    clustered layers that `train_record` names, if any, else over every kernel.
    """
    metrics = {"params_count": train_record["params_count"], "epoch_seconds": train_record["epoch_seconds"]}
    details = {"device": run["device"], "protocol": run["protocol"], "classes": class_names, "models": {}}
    for quant in sorted(run["models"], key=QUANT_ORDER.index):
        path = Path(model_dir) / f"{quant}.tflite"
        weights = tflite_weights.inspect(path, train_record.get("clustered_layers"))
        result = dict(run["models"][quant], gzip_bytes=gzip_bytes(path), sparsity=weights["sparsity"],
                      max_distinct_per_channel=weights["max_distinct_per_channel"])
        metrics[quant] = {key: result[key] for key in SCALAR_KEYS}
        details["models"][quant] = {
            "weights": weights["layers"],
            "precision": dict(zip(class_names, result["precision"])),
            "recall": dict(zip(class_names, result["recall"])),
            "confusion": result["confusion"],
        }
    metrics["protocol"] = dict(run["protocol"])
    metrics["device"] = dict(run["device"])
    return metrics, details
