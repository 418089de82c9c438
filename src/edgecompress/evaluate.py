"""Turn a runner result into the metrics file and the details file of one model. Imports no TensorFlow."""
import gzip
from pathlib import Path

QUANT_ORDER = ("fp32", "fp16", "dynamic", "int8", "int16x8")
SCALAR_KEYS = (
    "accuracy", "macro_precision", "macro_recall", "size_bytes", "gzip_bytes",
    "latency_p50_ms", "latency_p90_ms", "latency_mean_ms", "total_s",
)


def gzip_bytes(path) -> int:
    """Size of the file after gzip at maximum compression: what a download or an OTA update costs."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


def summarize(run: dict, model_dir, train_record: dict, class_names):
    """Split a runner result into (metrics, details): flat per-quantization scalars, and per-class tables."""
    metrics = {"params_count": train_record["params_count"], "epoch_seconds": train_record["epoch_seconds"]}
    details = {"device": run["device"], "protocol": run["protocol"], "classes": class_names, "models": {}}
    for quant in sorted(run["models"], key=QUANT_ORDER.index):
        result = dict(run["models"][quant], gzip_bytes=gzip_bytes(Path(model_dir) / f"{quant}.tflite"))
        metrics[quant] = {key: result[key] for key in SCALAR_KEYS}
        details["models"][quant] = {
            "precision": dict(zip(class_names, result["precision"])),
            "recall": dict(zip(class_names, result["recall"])),
            "confusion": result["confusion"],
        }
    metrics["protocol"] = dict(run["protocol"])
    return metrics, details
