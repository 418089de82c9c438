"""Measure a model's .tflite files here or on a device, and turn the result into its metrics and details.

Imports no TensorFlow.
"""
import gzip
from pathlib import Path

from edgecompress.measure import compare, remote, runner, tflite_weights, tflm
from edgecompress.core.names import QUANTIZATIONS
from edgecompress.core.record import TrainingRecord

SCALAR_KEYS = (
    "accuracy", "accuracy_ci95", "flips_lost", "flips_gained", "mcnemar_p", "macro_precision", "macro_recall",
    "size_bytes", "gzip_bytes", "latency_p50_ms", "latency_p50_ci95_ms", "latency_p90_ms", "latency_mean_ms",
    "total_s", "litert_ram_bytes", "sparsity", "max_distinct_per_channel",
)
# of evaluate.micro's variants: whether TFLM runs it (else the fault, one line), its arena, flash and accuracy
MICRO_KEYS = ("tflm", "tflm_fault", "ram_bytes", "flash_bytes", "tflm_accuracy", "tflm_disagreements")


def gzip_bytes(path) -> int:
    """Size of the file after gzip at its default level, 6 (as `gzip` and TFMOT's zip measurements compress): what a
    download or an OTA update costs. Level 9 saves at most 6% more and takes over ten times longer on pruned files."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0))


def measure(settings: dict, tflite_dir, test_dir, input_range=(0, 1), reference=None, reference_range=(0, 1)):
    """The runner's result for every .tflite in `tflite_dir`, on the machine that evaluate.device names, with
    pixels scaled onto the model's `input_range`, and the `reference` .tflite's predictions on the same images; with
    under "micro" the TFLM result of each of evaluate.micro's variants, measured here (on_microcontroller)."""
    protocol = (tflite_dir, test_dir, settings["threads"], settings["warmup"], settings["runs"], input_range,
                reference, reference_range)
    if settings["device"] == "local":
        run = runner.run_folder(*protocol)
    else:
        run = remote.Device(settings["device"], settings["python"], settings["connect_timeout"],
                            settings["run_timeout"], settings["ssh_options"]).run_folder(*protocol)
    return dict(run, micro=on_microcontroller(settings["micro"], tflite_dir, test_dir, input_range))


def micro_files(quantizations, tflite_dir) -> dict:
    """{variant: path} of what TFLM runs: each of `quantizations` that `tflite_dir` holds, and every TFLM-only
    variant (tflite_dir/tflm/*.tflite)."""
    folder = Path(tflite_dir)
    listed = {quant: folder / f"{quant}.tflite" for quant in quantizations}
    return {quant: path for quant, path in listed.items() if path.is_file()} | {
        path.stem: path for path in sorted((folder / tflm.FOLDER).glob("*.tflite"))}


def on_microcontroller(quantizations, tflite_dir, test_dir, input_range=(0, 1)) -> dict:
    """tflm.measure_file of every micro_files variant on the test split: {variant: result}."""
    split = runner.TestSplit(test_dir)
    return {variant: tflm.measure_file(path, (image for image, _ in split), input_range)
            for variant, path in micro_files(quantizations, tflite_dir).items()}


def micro_metrics(result: dict, path, predictions, labels) -> dict:
    """The flat MICRO_KEYS of one TFLM result, against LiteRT's `predictions` of the same file (or of the file a
    TFLM-only variant was made from): flash is the file's bytes (a board stores the flatbuffer as it is), RAM the
    arena TFLM's recording allocator used; with DECODE ops, the alternate memory and the arena beside it too."""
    if not result["runs"]:
        return dict.fromkeys(MICRO_KEYS) | {"tflm": False, "tflm_fault": result["fault"]}
    on_micro = result["predictions"]
    return {"tflm": True, "tflm_fault": None, "ram_bytes": result["arena"]["total"],
            "flash_bytes": Path(path).stat().st_size,
            "tflm_accuracy": sum(p == y for p, y in zip(on_micro, labels)) / len(labels),
            "tflm_disagreements": sum(p != q for p, q in zip(on_micro, predictions))} | (
        {"alt_memory_bytes": result["alt_memory"], "ram_bytes_with_alt": result["arena_with_alt"]["total"]}
        if "alt_memory" in result else {})


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
    paths, details["micro"] = micro_files(run["micro"], tflite_dir), {}
    for variant, micro in run["micro"].items():
        source, path = tflm.SOURCES.get(variant, variant), paths[variant]
        if variant != source:  # a TFLM-only variant: its file's sizes beside TFLM's figures
            metrics[variant] = {"size_bytes": path.stat().st_size, "gzip_bytes": gzip_bytes(path)}
        metrics[variant] |= micro_metrics(micro, path, run["models"][source]["predictions"], run["labels"])
        details["micro"][variant] = {"source": source} | {
            key: micro[key] for key in ("arena", "arena_with_alt", "predictions") if key in micro}
    metrics["protocol"] = dict(run["protocol"])
    metrics["device"] = dict(run["device"])
    return metrics, details
