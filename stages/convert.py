"""convert@<model>: write models/<model>/tflite/<quantization>.tflite for each of convert.quantizations."""
import sys

from edgecompress import data, params
from edgecompress.errors import run_stage
from edgecompress.files import atomic_path


def main(model_name):
    p = params.load("seed", "convert")
    cfg = p["convert"]
    from edgecompress import convert, models  # TensorFlow loads only once params are valid

    model = models.load(f"models/{model_name}/model.h5")
    x_train = data.to_float(data.load_split("data/train.npz")[0])
    with atomic_path(f"models/{model_name}/tflite", is_dir=True) as out:
        for quant in cfg["quantizations"]:
            flatbuffer = convert.convert(model, quant, x_train, cfg["representative_samples"], p["seed"])
            (out / f"{quant}.tflite").write_bytes(flatbuffer)
            print(f"{model_name}: {quant}.tflite, {len(flatbuffer):,} bytes")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1]))
