"""evaluate: run every .tflite of MODEL_DIR on DATA_DIR's test split, here or on evaluate.device, beside the
reference (REFERENCE_DIR's fp32 model, which every comparison is paired against); write METRICS_DIR/<model>.json and
METRICS_DIR/details/<model>.json. evaluate.micro's variants also run on TensorFlow Lite Micro, here."""
from pathlib import Path

from edgecompress.measure import compare, evaluate
from edgecompress.core import params
from edgecompress.core.errors import UserError, run_stage
from edgecompress.core.files import read_json, write_json
from edgecompress.core.record import TrainingRecord


def main(data_dir, model_dir, reference_dir, metrics_dir):
    cfg = params.load("evaluate")["evaluate"]
    data_dir, model_dir, reference_dir = Path(data_dir), Path(model_dir), Path(reference_dir)
    name, record = model_dir.name, TrainingRecord.read(model_dir / "train.json")
    classes = read_json(data_dir / "dataset.json")["classes"]
    reference = reference_dir / "tflite" / f"{compare.REFERENCE[1]}.tflite"
    if not reference.is_file():
        raise UserError(f"evaluate: the reference model {reference} is missing: every model is compared with it, so "
                        f"convert.quantizations must include {compare.REFERENCE[1]}")
    run = evaluate.measure(cfg, model_dir / "tflite", data_dir / "test", record.input_range, reference,
                           TrainingRecord.read(reference_dir / "train.json").input_range)
    metrics, details = evaluate.summarize(run, model_dir / "tflite", record, classes)
    write_json(Path(metrics_dir) / "details" / f"{name}.json", details)
    write_json(Path(metrics_dir) / f"{name}.json", metrics)
    for quant in run["models"]:
        m = metrics[quant]
        print(f"{name} {quant}: accuracy {m['accuracy']:.4f}, {m['flips_lost']} images lost and {m['flips_gained']} "
              f"gained against the reference (McNemar p {m['mcnemar_p']:.3g}), p50 {m['latency_p50_ms']:.3f} ms")
    for variant in run["micro"]:
        print(f"{name} {evaluate.micro_line(variant, metrics[variant])}")


if __name__ == "__main__":
    run_stage(main)
