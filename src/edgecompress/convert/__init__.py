"""SavedModel folder -> TF Lite flatbuffer, with each post-training quantization."""
from pathlib import Path

import numpy as np

from edgecompress.data import streams
from edgecompress.core.backend import tf
from edgecompress.data import open_split
from edgecompress.core.files import atomic_path
from edgecompress.convert.lut import lut_variant
from edgecompress.core.names import LUT_VARIANT, QAT_QUANTIZATION, TFLM_FOLDER, TFLM_ONLY
from edgecompress.core.record import TrainingRecord


def _representative(x_float, samples: int, seed: int):
    """A generator over `samples` training images drawn without replacement, for calibration."""
    rng = np.random.default_rng(seed)
    picked = x_float[rng.choice(len(x_float), size=min(samples, len(x_float)), replace=False)]

    def generate():
        for image in picked:
            yield [image[None]]

    return generate


class Converter:
    """A SavedModel folder loaded once and converted with each quantization in turn (fp32, fp16, dynamic, int8 with
    int8 in and out, int16x8): the same bytes as a fresh TFLiteConverter per quantization, without reloading."""

    def __init__(self, saved_model):
        self._converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))

    def convert(self, quantization: str, x_float=None, samples: int = 100, seed: int = 0) -> bytes:
        """`x_float` (float training images, scaled as the model takes them) calibrates int8 and int16x8; a
        quantization-aware trained model carries its own ranges and converts to int8 with `x_float=None`."""
        converter = self._converter
        converter.optimizations, converter.representative_dataset = [], None  # fp32's settings, then the variant's
        converter.target_spec = tf.lite.TargetSpec()
        converter.inference_input_type = converter.inference_output_type = tf.float32
        if quantization == "fp32":
            pass
        elif quantization == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif quantization == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if x_float is not None:  # a QAT model's fake-quant ops already fix every op to int8
                converter.representative_dataset = _representative(x_float, samples, seed)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        elif quantization == "int16x8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative(x_float, samples, seed)
            converter.target_spec.supported_ops = [  # ops without a 16x8 kernel (MobileNetV3's HARD_SWISH) stay float
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        else:
            raise ValueError(f"unknown quantization {quantization!r}")
        return converter.convert()


def convert(saved_model, quantization: str, x_float=None, samples: int = 100, seed: int = 0) -> bytes:
    """Convert a SavedModel folder with one quantization (Converter.convert)."""
    return Converter(saved_model).convert(quantization, x_float, samples, seed)


def convert_model(model_dir, record: TrainingRecord, quantizations, train_split, samples: int, seed: int) -> dict:
    """Write model_dir/tflite/<quantization>.tflite; return {path relative to model_dir/tflite: bytes written}.

    A float model gets every requested quantization, calibrated on `samples` images drawn from the prepared
    split in `train_split`; a quantization-aware trained model carries its own ranges and converts to int8 alone.
    The int8 file's look-up-table variant goes to tflite/tflm/int8_lut.tflite where it is smaller (lut.lut_variant):
    only TensorFlow Lite Micro runs it.
    """
    model_dir = Path(model_dir)
    if record.quantization_aware:
        quantizations, x_float = [QAT_QUANTIZATION], None
    else:
        x_float = streams.sample(open_split(train_split), samples, seed, record.input_range)
    sizes, converter = {}, Converter(model_dir / "model")
    with atomic_path(model_dir / "tflite", is_dir=True) as out:
        for quant in quantizations:
            flatbuffer = converter.convert(quant, x_float, samples, seed)
            sizes[f"{quant}.tflite"] = (out / f"{quant}.tflite").write_bytes(flatbuffer)
            if quant == TFLM_ONLY[LUT_VARIANT] and (lut := lut_variant(flatbuffer)):
                name = f"{TFLM_FOLDER}/{LUT_VARIANT}.tflite"
                (out / TFLM_FOLDER).mkdir()
                sizes[name] = (out / name).write_bytes(lut)
    return sizes
