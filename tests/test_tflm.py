"""TensorFlow Lite Micro as a target: the arena of a model whose tensors are known, an op TFLM lacks named, and the
metrics drawn from a TFLM run against LiteRT's."""
import numpy as np
import pytest
import tensorflow as tf

from edgecompress import convert
from edgecompress.convert.lut import lut_variant
from edgecompress.measure import evaluate, tflm
from edgecompress.measure.tflm import aligned
from edgecompress.train import training


def one_convolution(folder, filters: int, side: int = 8):
    """An int8 .tflite of one 3x3 convolution (same padding) on side x side x 1 images, through the project's
    converter, calibrated on random images."""
    training.seed_everything(0)
    inputs = tf.keras.Input((side, side, 1))
    model = tf.keras.Model(inputs, tf.keras.layers.Conv2D(filters, 3, padding="same")(inputs))
    training.save(model, folder / "model")
    x_float = np.random.default_rng(0).random((16, side, side, 1), dtype=np.float32)
    path = folder / f"conv{filters}.tflite"
    path.write_bytes(convert.convert(folder / "model", "int8", x_float, samples=16, seed=0))
    return path


IMAGES = [np.random.default_rng(i).integers(0, 256, (8, 8, 1), dtype=np.uint8) for i in range(3)]


@pytest.mark.parametrize("filters", [4, 8])
def test_arena_head_of_one_convolution_is_its_input_and_output_tensors(tmp_path, filters):
    """During the convolution its int8 input (8x8x1 bytes) and output (8x8xfilters bytes) are both alive, and
    nothing else is: the planned part of the arena (head) holds exactly those two buffers."""
    result = tflm.measure(one_convolution(tmp_path, filters), IMAGES)
    assert result["runs"] and len(result["predictions"]) == len(IMAGES)
    arena = result["arena"]
    assert arena["head"] == aligned(8 * 8 * 1) + aligned(8 * 8 * filters)
    assert arena["total"] == arena["head"] + arena["tail"]
    assert 0 < arena["tail"] < 4096  # tensor structs, quantization parameters, the kernel's per-channel buffers


def test_an_op_tflm_lacks_is_named_not_raised(tmp_path):
    inputs = tf.keras.Input((8,), batch_size=1)
    model = tf.keras.Model(inputs, tf.keras.layers.Lambda(lambda t: tf.math.top_k(t, 3).values)(inputs))
    path = tmp_path / "top_k.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    result = tflm.measure(path, [np.zeros(8, np.uint8)])
    assert result == {"runs": False, "fault": "TFLM has no kernel for TOPK_V2"}


def test_micro_metrics_count_against_the_labels_and_litert(tmp_path):
    path = tmp_path / "int8.tflite"
    path.write_bytes(b"\0" * 1234)
    labels, litert = [0, 1, 2, 3], [0, 1, 2, 2]
    ran = {"runs": True, "arena": {"total": 5000, "head": 3000, "tail": 2000}, "predictions": [0, 1, 1, 3],
           "path": path}
    assert evaluate.micro_metrics(ran, litert, labels) == {
        "tflm": True, "tflm_fault": None, "ram_bytes": 5000, "flash_bytes": 1234, "tflm_accuracy": 0.75,
        "tflm_disagreements": 2}
    with_alt = dict(ran, alt_memory=1152, arena_with_alt={"total": 3100, "head": 3000, "tail": 100})
    assert evaluate.micro_metrics(with_alt, litert, labels)["alt_memory_bytes"] == 1152
    assert evaluate.micro_metrics(with_alt, litert, labels)["ram_bytes_with_alt"] == 3100
    failed = evaluate.micro_metrics({"runs": False, "fault": "TFLM has no kernel for TOPK_V2", "path": path}, litert,
                                    labels)
    assert failed == {"tflm": False, "tflm_fault": "TFLM has no kernel for TOPK_V2", "ram_bytes": None,
                      "flash_bytes": None, "tflm_accuracy": None, "tflm_disagreements": None}


KERNELS = {2: 8, 3: 16}  # clustered convolutions: layer index -> filters (8 x 3 x 3 x 8 and 16 x 3 x 3 x 8 weights)


@pytest.fixture(scope="module")
def clustered_int8(tmp_path_factory):
    """An int8 .tflite whose second and third convolutions have four values per output channel (as clustering
    leaves them), and its look-up-table variant."""
    folder = tmp_path_factory.mktemp("clustered")
    training.seed_everything(0)
    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Conv2D(16, 3, padding="same")(x))
    rng = np.random.default_rng(0)
    for index in KERNELS:
        kernel = model.layers[index].kernel
        levels = np.array([-0.5, -0.1, 0.2, 0.6], np.float32)[rng.integers(0, 4, kernel.shape)]
        kernel.assign(levels * rng.uniform(0.5, 2, (1, 1, 1, kernel.shape[-1])).astype(np.float32))
    training.save(model, folder / "model")
    int8 = convert.convert(folder / "model", "int8", rng.random((16, 8, 8, 1), dtype=np.float32), samples=16, seed=0)
    (folder / "int8.tflite").write_bytes(int8)
    (folder / "int8_lut.tflite").write_bytes(lut_variant(int8))
    return folder


def images():
    return iter(IMAGES)


@pytest.fixture(scope="module")
def on_tflm(clustered_int8):
    """tflm.measure_file of the int8 file and of its look-up-table variant: {file name: result}."""
    return {name: tflm.measure_file(clustered_int8 / f"{name}.tflite", images) for name in ("int8", "int8_lut")}


def test_only_the_kernels_with_few_values_are_stored_as_look_up_tables(clustered_int8, tmp_path):
    """Four values per channel: 2-bit indices and a table of four values per channel replace a byte per weight;
    the first kernel (nine weights per channel) would grow, and stays as it is."""
    lut = (clustered_int8 / "int8_lut.tflite").read_bytes()
    decoded = sorted(size for *_, size in tflm.decoded_tensors(lut))
    assert decoded == [filters * 3 * 3 * 8 for filters in KERNELS.values()]
    assert len(lut) < (clustered_int8 / "int8.tflite").stat().st_size
    assert lut_variant(one_convolution(tmp_path, 4).read_bytes()) is None  # nothing would shrink


def test_lut_variant_decodes_to_the_int8_files_weights_and_predicts_as_it_does(clustered_int8, on_tflm):
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    lut = (clustered_int8 / "int8_lut.tflite").read_bytes()
    interpreter = runtime.Interpreter.from_bytes(lut, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    interpreter.set_input(IMAGES[0][None].astype(np.int8), 0)
    interpreter.invoke()
    original = model_editor.read((clustered_int8 / "int8.tflite").read_bytes()).subgraphs[0].tensors
    for graph, encoded, decoded, _ in tflm.decoded_tensors(lut):
        read_back = interpreter._interpreter.GetTensor(decoded, graph)["tensor_data"]
        assert np.array_equal(np.asarray(read_back).reshape(original[encoded].array.shape), original[encoded].array)
    int8, with_lut = on_tflm["int8"], on_tflm["int8_lut"]
    assert with_lut["predictions"] == int8["predictions"] and "alt_memory" not in int8


def test_decoded_kernels_take_arena_unless_they_get_memory_of_their_own(on_tflm):
    """Decoded into the arena, the kernels join it; given alternate memory the size of the larger one (TFLM
    decodes into it op after op), the arena's planned part is the int8 file's again, and what persists grows only by
    the DECODE ops' bookkeeping."""
    int8, lut = on_tflm["int8"]["arena"], on_tflm["int8_lut"]
    largest = aligned(max(KERNELS.values()) * 3 * 3 * 8)
    assert lut["alt_memory"] == largest
    assert lut["arena"]["total"] >= int8["total"] + largest
    assert lut["arena_with_alt"]["head"] == int8["head"]
    assert int8["total"] < lut["arena_with_alt"]["total"] < int8["total"] + largest
