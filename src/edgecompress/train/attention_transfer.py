"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017; paper 001): the student matches the teacher's spatial
attention maps at the end of every resolution stage, on top of its label loss.

A map is the channel mean of the squared activations, flattened and L2-normalised; a pair's loss is the mean
squared difference of the two maps, as in the authors' code, for which beta = 1000 is their setting.
"""
import math

from edgecompress.core.backend import keras, tf
from edgecompress.train.distillation import Distiller
from edgecompress.core.errors import UserError


def stage_ends(model) -> list:
    """(layer name, (height, width)) of the last layer at each spatial size that a layer with weights computes,
    largest first; 1 x 1 maps are left out (normalised, they are always 1)."""
    def size(layer):
        if len(layer.inbound_nodes) != 1:  # a layer called more than once has no single output
            return None
        shape = layer.output_shape
        return tuple(shape[1:3]) if isinstance(shape, tuple) and len(shape) == 4 else None

    computed = {size(layer) for layer in model.layers if layer.weights} - {None, (1, 1)}
    last = {size(layer): layer.name for layer in model.layers if size(layer) in computed}
    return sorted(((name, s) for s, name in last.items()), key=lambda end: -end[1][0] * end[1][1])


def pair_stages(student, teacher) -> list:
    """{student, teacher: layer names, student_size, teacher_size} per student stage end, paired with the teacher's
    of the same size, else with the nearest in area (on a tie the larger, to be pooled down)."""
    student_ends, teacher_ends = stage_ends(student), stage_ends(teacher)
    for model, ends in ((student, student_ends), (teacher, teacher_ends)):
        if not ends:
            raise UserError(f"attention transfer: {model.name} has no convolutional stage with a spatial map larger "
                            "than 1x1 to pair; expected a student and a teacher with convolutional stages")

    def distance(student_size, teacher_size):
        ratio = teacher_size[0] * teacher_size[1] / (student_size[0] * student_size[1])
        return abs(math.log(ratio)), -ratio

    pairs = []
    for name, size in student_ends:
        teacher_name, teacher_size = min(teacher_ends, key=lambda end: distance(size, end[1]))
        pairs.append({"student": name, "teacher": teacher_name, "student_size": list(size),
                      "teacher_size": list(teacher_size)})
    return pairs


def pool(maps, size):
    """(batch, height, width, 1) maps averaged down to `size`: over whole windows where the sizes divide, else by
    antialiased resizing (both have gradients; area resizing has none)."""
    height, width = maps.shape[1:3]
    if height % size[0] == 0 and width % size[1] == 0:
        window = (height // size[0], width // size[1])
        return tf.nn.avg_pool2d(maps, window, window, "VALID")
    return tf.image.resize(maps, size, method="bilinear", antialias=True)


def attention_map(activations, size=None):
    """The normalised (batch, height * width) attention map of (batch, height, width, channels) activations,
    averaged down to `size` (height, width) first if given."""
    energy = tf.reduce_mean(tf.square(activations), axis=-1, keepdims=True)
    if size is not None and tuple(energy.shape[1:3]) != tuple(size):
        energy = pool(energy, size)
    return tf.math.l2_normalize(tf.reshape(energy, (tf.shape(energy)[0], -1)), axis=1)


def attention_loss(teacher_activations, student_activations):
    """Mean squared difference of the two attention maps, the larger pooled to the smaller's size."""
    sizes = [tuple(a.shape[1:3]) for a in (teacher_activations, student_activations)]
    size = min(sizes, key=lambda s: s[0] * s[1])
    return tf.reduce_mean(tf.square(attention_map(teacher_activations, size) - attention_map(student_activations, size)))


class AttentionDistiller(Distiller):
    """Trains `student` on label loss + `kd_weight` x Hinton's loss + `beta` / 2 x the attention losses of
    its stage ends paired with the teacher's (`pairs`, from pair_stages); `teacher` stays frozen."""

    terms = ("student_loss", "distillation_loss", "attention_loss")

    def __init__(self, student, teacher, pairs: list, beta: float, kd_weight: float, temperature: float):
        taps = [(pair["student"], pair["teacher"]) for pair in pairs]
        super().__init__(student, teacher, alpha=None, temperature=temperature, taps=taps)
        self.beta, self.kd_weight = beta, kd_weight

    def loss_terms(self, labels, probabilities, teacher_outputs, student_outputs):
        terms = super().loss_terms(labels, probabilities, teacher_outputs, student_outputs)
        pairs = zip(teacher_outputs[1:], student_outputs[1:])
        return {**terms, "attention_loss": tf.add_n([attention_loss(t, s) for t, s in pairs])}

    def total(self, terms):
        return (terms["student_loss"] + self.kd_weight * terms["distillation_loss"]
                + self.beta / 2 * terms["attention_loss"])
