"""Attention transfer: the maps and their loss against a hand computation, stage pairing, the distiller's sum."""
import numpy as np
import pytest

from edgecompress.train import attention_transfer, models, training
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError


def hand_map(activations, window=1):
    """Channel mean of squares, averaged over window x window blocks, flattened, L2-normalised (numpy)."""
    energy = (activations.astype(np.float64) ** 2).mean(axis=-1)
    b, h, w = energy.shape
    energy = energy.reshape(b, h // window, window, w // window, window).mean(axis=(2, 4)).reshape(b, -1)
    return energy / np.linalg.norm(energy, axis=1, keepdims=True)


def test_attention_loss_by_hand_for_maps_of_one_size():
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(2, 4, 4, 6)), rng.normal(size=(2, 4, 4, 3))
    expected = ((hand_map(teacher) - hand_map(student)) ** 2).mean()
    got = float(attention_transfer.attention_loss(teacher.astype("float32"), student.astype("float32")))
    assert got == pytest.approx(expected, rel=1e-5)
    assert got > 0


def test_the_larger_map_is_pooled_down_to_the_smaller():
    rng = np.random.default_rng(1)
    teacher, student = rng.normal(size=(3, 8, 8, 4)), rng.normal(size=(3, 4, 4, 5))
    expected = ((hand_map(teacher, window=2) - hand_map(student)) ** 2).mean()
    got = float(attention_transfer.attention_loss(teacher.astype("float32"), student.astype("float32")))
    assert got == pytest.approx(expected, rel=1e-5)
    both_ways = float(attention_transfer.attention_loss(student.astype("float32"), teacher.astype("float32")))
    assert both_ways == pytest.approx(got, rel=1e-6)


def test_identical_activations_lose_nothing_and_scaled_ones_neither():
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 3)).astype("float32")
    assert float(attention_transfer.attention_loss(x, x)) == pytest.approx(0.0, abs=1e-9)
    assert float(attention_transfer.attention_loss(x, 3 * x)) == pytest.approx(0.0, abs=1e-9)  # normalised maps


def test_the_default_student_pairs_with_the_resnet_by_size():
    teacher = models.build("resnet18", (32, 32, 1), 10, 0.125)
    student = models.build("mobilenetv2", (32, 32, 1), 10, 0.35, 64)
    assert attention_transfer.stage_ends(teacher) == [("stem_relu", (16, 16)), ("stage1_block2_out", (8, 8)),
                                                      ("stage2_block2_out", (4, 4)), ("stage3_block2_out", (2, 2))]
    pairs = attention_transfer.pair_stages(student, teacher)
    sizes = [(p["student_size"], p["teacher_size"]) for p in pairs]
    assert sizes == [([32, 32], [16, 16]), ([16, 16], [16, 16]), ([8, 8], [8, 8]), ([4, 4], [4, 4]), ([2, 2], [2, 2])]
    assert [p["teacher"] for p in pairs] == ["stem_relu", "stem_relu", "stage1_block2_out", "stage2_block2_out",
                                             "stage3_block2_out"]
    for p in pairs:  # every stage end is the last layer computed at its size
        later = student.layers[[l.name for l in student.layers].index(p["student"]) + 1:]
        assert all(tuple(l.output_shape[1:3]) != tuple(p["student_size"]) for l in later
                   if isinstance(l.output_shape, tuple) and len(l.output_shape) == 4)


def test_a_model_without_spatial_stages_cannot_be_paired():
    image = keras.Input((8, 8, 1))
    dense = keras.Model(image, keras.layers.Dense(3)(keras.layers.Flatten()(image)), name="dense_only")
    conv = models.build("resnet18", (32, 32, 1), 3, 0.125)
    with pytest.raises(UserError, match="dense_only has no convolutional stage"):
        attention_transfer.pair_stages(conv, dense)


def test_the_distiller_adds_half_beta_times_the_attention_losses():
    training.seed_everything(0)
    teacher = models.build("resnet18", (32, 32, 1), 4, 0.125)
    student = models.build("mobilenetv2", (32, 32, 1), 4, 0.35, 64)
    pairs = attention_transfer.pair_stages(student, teacher)
    distiller = attention_transfer.AttentionDistiller(student, teacher, pairs, beta=1000, kd_weight=0.5,
                                                      temperature=4.0)
    distiller.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 32, 32, 1)).astype("float32"), rng.integers(0, 4, 8)
    teacher_before = teacher.get_weights()
    logs = distiller.train_on_batch(x, y, return_dict=True)
    expected = logs["student_loss"] + 0.5 * logs["distillation_loss"] + 500 * logs["attention_loss"]
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["attention_loss"] > 0
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
