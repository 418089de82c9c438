"""convert: write MODEL_DIR/tflite/<quantization>.tflite, calibrating int8 on DATA_DIR's training images, and the
int8 file's look-up-table variant for TensorFlow Lite Micro where it is smaller (MODEL_DIR/tflite/tflm/)."""
from pathlib import Path

from edgecompress.core import params
from edgecompress.core.errors import run_stage
from edgecompress.core.record import TrainingRecord


def main(data_dir, model_dir):
    p = params.load("seed", "convert")
    record = TrainingRecord.read(Path(model_dir) / "train.json")
    from edgecompress import convert  # TensorFlow loads only once params are valid

    cfg = p["convert"]
    sizes = convert.convert_model(model_dir, record, cfg["quantizations"], Path(data_dir) / "train",
                                  cfg["representative_samples"], p["seed"])
    for name, size in sizes.items():
        print(f"{model_dir}/tflite/{name}: {size:,} bytes")


if __name__ == "__main__":
    run_stage(main)
