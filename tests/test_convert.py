"""Every quantization converts, loads in LiteRT, has the expected tensor types, and agrees with Keras."""
import numpy as np
import pytest

from edgecompress import convert
from edgecompress.train import models, training
from edgecompress.measure import evaluate, runner, tflite_weights
from edgecompress.data import streams
from edgecompress.core.names import QUANTIZATIONS as QUANTS
from test_models_and_training import tiny_splits


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    training.seed_everything(0)
    model = models.build("resnet18", (32, 32, 1), 4, 0.125)
    splits = tiny_splits(tmp_path_factory.mktemp("data"))
    training.fit(model, splits, optimizer="adam", learning_rate=0.01, epochs=3, batch_size=16, seed=0)
    folder = tmp_path_factory.mktemp("tflite")
    training.save(model, folder / "model")
    x_float = streams.sample(splits["train"], 16, seed=0)
    for quant in QUANTS:
        (folder / f"{quant}.tflite").write_bytes(convert.convert(folder / "model", quant, x_float, samples=16, seed=0))
    return model, folder, splits["val"]


def tensor_types(path):
    interpreter = runner.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    kernels = {t["dtype"] for t in interpreter.get_tensor_details() if "conv" in t["name"].lower()}
    return inp["dtype"], out["dtype"], kernels


def test_io_and_weight_types(converted):
    _, folder, _ = converted
    assert tensor_types(folder / "fp32.tflite")[:2] == (np.float32, np.float32)
    assert np.float16 in tensor_types(folder / "fp16.tflite")[2]
    assert np.int8 in tensor_types(folder / "dynamic.tflite")[2]
    assert tensor_types(folder / "int8.tflite")[:2] == (np.int8, np.int8)
    assert np.int16 in tensor_types(folder / "int16x8.tflite")[2]


def test_fp16_kernels_read_back_are_the_fp32_kernels_in_half_precision(converted):
    """Read through DEQUANTIZE in the fp16 file, whatever XNNPACK's delegate node lists as its outputs; both files
    hold the kernels with BatchNorm folded in."""
    model, folder, _ = converted
    full = dict(tflite_weights.kernels(folder / "fp32.tflite"))
    half = dict(tflite_weights.kernels(folder / "fp16.tflite"))
    assert half.keys() == full.keys() == {layer.name for layer in model.layers if hasattr(layer, "kernel")}
    for name, kernel in half.items():
        np.testing.assert_array_equal(kernel, full[name].astype(np.float16), name)


def test_sizes_shrink_as_expected(converted):
    _, folder, _ = converted
    size = {p.stem: p.stat().st_size for p in folder.glob("*.tflite")}
    assert 0.45 < size["fp16"] / size["fp32"] < 0.6
    for quant in ("dynamic", "int8", "int16x8"):
        assert 0.2 < size[quant] / size["fp32"] < 0.35, quant


def test_every_variant_agrees_with_keras(converted):
    model, folder, val = converted
    keras_predictions = model.predict(streams.images(val, 16), verbose=0).argmax(1)
    y = val.labels  # one shard: the order streamed and written
    result = runner.run_folder(folder, val.folder, threads=1, warmup=1)
    assert set(result["models"]) == set(QUANTS)
    keras_accuracy = float((keras_predictions == y).mean())
    for quant, measured in result["models"].items():
        assert measured["accuracy"] == pytest.approx(keras_accuracy, abs=0.07), quant
        assert measured["latency_p50_ms"] > 0
    assert result["models"]["fp32"]["accuracy"] == keras_accuracy
    assert result["protocol"] == {"threads": 1, "warmup": 1, "runs": 1, "batch_size": 1, "images": len(y)}
    twice = runner.run_folder(folder, val.folder, threads=1, warmup=0, runs=2)
    assert twice["protocol"]["runs"] == 2
    assert all(twice["models"][q]["accuracy"] == m["accuracy"] for q, m in result["models"].items())


def test_unknown_quantization_is_refused(converted):
    _, folder, _ = converted
    with pytest.raises(ValueError, match="int4"):
        convert.convert(folder / "model", "int4")


def test_one_converter_writes_the_bytes_of_a_fresh_one_per_quantization(converted):
    """Every quantization after every other one: no setting of an earlier conversion leaks into the next."""
    _, folder, val = converted
    x_float = streams.sample(val, 16, seed=0)
    fresh = {quant: convert.convert(folder / "model", quant, x_float, samples=16, seed=0) for quant in QUANTS}
    reused = convert.Converter(folder / "model")
    for quant in [*reversed(QUANTS), *QUANTS]:
        assert reused.convert(quant, x_float, samples=16, seed=0) == fresh[quant], quant


def test_tflm_runs_the_integer_and_float_variants_as_litert_does_and_names_what_it_cannot(converted):
    """TFLM's reference kernels predict within an image of LiteRT's on the int8, int16x8 and fp32 files; it has no
    float16 DEQUANTIZE and no hybrid (dynamic-range) kernels, which it says in one line instead of raising."""
    _, folder, val = converted
    result = evaluate.on_microcontroller(QUANTS, folder, val.folder)
    litert = runner.run_folder(folder, val.folder, threads=1, warmup=0)["models"]
    for quant in ("fp32", "int8", "int16x8"):
        assert result[quant]["runs"], result[quant]
        differing = sum(p != q for p, q in zip(result[quant]["predictions"], litert[quant]["predictions"]))
        assert differing <= 1, quant
        assert 0 < result[quant]["arena"]["total"] < 8 * 2**20
    for quant in ("fp16", "dynamic"):
        assert not result[quant]["runs"] and result[quant]["fault"], quant


def test_litert_memory_counts_the_model_and_its_tensors_not_the_runtime(converted):
    """A float model's weights take four times an int8 model's in memory too; the runtime's code, paged in by the first
    invoke in every process, is not counted, so the figure repeats to a page."""
    _, folder, _ = converted
    memory = {quant: runner.litert_memory(folder / f"{quant}.tflite") for quant in ("fp32", "int8")}
    sizes = {quant: (folder / f"{quant}.tflite").stat().st_size for quant in memory}
    assert memory["fp32"] - memory["int8"] > sizes["fp32"] - sizes["int8"]
    assert sizes["int8"] < memory["int8"] < 8 * sizes["fp32"]
    assert abs(runner.litert_memory(folder / "int8.tflite") - memory["int8"]) <= 8192
