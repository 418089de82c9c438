"""The Distiller: its loss against a hand computation, the teacher kept frozen, the student saved alone."""
import numpy as np
import pytest

from edgecompress.train import distillation, models, training
from edgecompress.core.backend import keras
from edgecompress.core.errors import UserError


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_distillation_loss_by_hand():
    teacher, student, t = np.array([[2.0, 0.0, -1.0]]), np.array([[0.0, 1.0, 0.5]]), 2.0
    p, q = softmax(teacher / t), softmax(student / t)
    expected = float((p * np.log(p / q)).sum() * t**2)
    got = float(distillation.distillation_loss(teacher.astype("float32"), student.astype("float32"), t))
    assert got == pytest.approx(expected, rel=1e-5)
    assert float(distillation.distillation_loss(teacher.astype("float32"), teacher.astype("float32"), 5.0)) == \
        pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def pair():
    training.seed_everything(0)
    teacher = models.build("resnet18", (32, 32, 1), 4, 0.125)
    student = models.build("mobilenetv2", (32, 32, 1), 4, 0.35)
    return teacher, student


def test_train_step_mixes_the_losses_and_trains_only_the_student(pair):
    teacher, student = pair
    distiller = distillation.Distiller(student, teacher, alpha=0.3, temperature=4.0)
    distiller.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 32, 32, 1)).astype("float32"), rng.integers(0, 4, 8)
    teacher_before, student_before = teacher.get_weights(), student.get_weights()
    logs = distiller.train_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(0.3 * logs["student_loss"] + 0.7 * logs["distillation_loss"], rel=1e-5)
    assert logs["distillation_loss"] > 0 and 0 <= logs["accuracy"] <= 1
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(student_before, student.get_weights()))
    assert set(distiller.evaluate(x, y, return_dict=True, verbose=0)) == {"loss", "accuracy"}


def test_student_saves_and_loads_without_the_distiller(pair, tmp_path):
    _, student = pair
    training.save(student, tmp_path / "model")
    loaded = models.load(tmp_path / "model")
    x = np.random.default_rng(1).random((4, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), student.predict(x, verbose=0), atol=1e-6)
    assert "distiller" not in {layer.name for layer in loaded.layers}


def test_students_are_smaller_and_take_their_own_input_size():
    teacher = models.build("resnet18", (32, 32, 1), 10, 0.5)
    student = models.build("mobilenetv2", (32, 32, 1), 10, 0.35)
    assert teacher.count_params() / student.count_params() >= 3
    assert student.get_layer("logits").units == 10
    resized = models.build("mobilenetv2", (32, 32, 1), 10, 0.35, input_size=48)
    assert resized.get_layer("resize").output_shape == (None, 48, 48, 1) and resized.output_shape == (None, 10)
    narrow = models.build("resnet18", (32, 32, 1), 10, 0.25)
    assert teacher.count_params() / narrow.count_params() >= 3
    with pytest.raises(UserError, match="mobilenetv2 needs inputs of at least 32x32, got 16x16"):
        models.build("mobilenetv2", (32, 32, 1), 10, 0.35, input_size=16)
