"""evaluate: run every .tflite of MODEL_DIR on DATA_DIR's test split, here or on evaluate.device;
write METRICS_DIR/<model>.json and METRICS_DIR/details/<model>.json."""
from pathlib import Path

from edgecompress.measure import evaluate
from edgecompress.core import params
from edgecompress.core.errors import run_stage
from edgecompress.core.files import read_json, write_json
from edgecompress.core.record import TrainingRecord


def main(data_dir, model_dir, metrics_dir):
    cfg = params.load("evaluate")["evaluate"]
    data_dir, model_dir, name = Path(data_dir), Path(model_dir), Path(model_dir).name
    record = TrainingRecord.read(model_dir / "train.json")
    classes = read_json(data_dir / "dataset.json")["classes"]
    run = evaluate.measure(cfg, model_dir / "tflite", data_dir / "test", record.input_range)
    metrics, details = evaluate.summarize(run, model_dir / "tflite", record, classes)
    write_json(Path(metrics_dir) / "details" / f"{name}.json", details)
    write_json(Path(metrics_dir) / f"{name}.json", metrics)
    for quant in run["models"]:
        print(f"{name} {quant}: accuracy {metrics[quant]['accuracy']:.4f}, p50 {metrics[quant]['latency_p50_ms']:.3f} ms")


if __name__ == "__main__":
    run_stage(main)
