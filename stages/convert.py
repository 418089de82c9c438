"""convert@<model>: write models/<model>/tflite/<quantization>.tflite.

Float models get every quantization in convert.quantizations, calibrated on training images; a
quantization-aware trained model carries its own ranges and converts to int8 alone (convert params unused).
"""
import sys

from edgecompress import data, params
from edgecompress.errors import run_stage
from edgecompress.files import atomic_path, read_json


def main(model_name):
    p = params.load("seed", "convert")
    if read_json(f"models/{model_name}/train.json").get("quantization_aware"):
        quantizations, x_train, samples, seed = ["int8"], None, 0, 0
    else:
        quantizations, samples, seed = p["convert"]["quantizations"], p["convert"]["representative_samples"], p["seed"]
        x_train = data.to_float(data.load_split("data/train.npz")[0])
    from edgecompress import convert  # TensorFlow loads only once params are valid

    with atomic_path(f"models/{model_name}/tflite", is_dir=True) as out:
        for quant in quantizations:
            flatbuffer = convert.convert(f"models/{model_name}/model", quant, x_train, samples, seed)
            (out / f"{quant}.tflite").write_bytes(flatbuffer)
            print(f"{model_name}: {quant}.tflite, {len(flatbuffer):,} bytes")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1]))
