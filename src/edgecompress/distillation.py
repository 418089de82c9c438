"""Knowledge distillation (Hinton et al.): a student learns from the labels and from a frozen teacher's logits."""
from edgecompress.backend import keras, tf
from edgecompress.models import logits


def logits_of(model) -> keras.Model:
    """The same model (shared weights) ending at its logits, the input of its final softmax."""
    return keras.Model(model.inputs, logits(model), name=f"{model.name}_logits")


def distillation_loss(teacher_logits, student_logits, temperature: float):
    """KL(softmax(teacher / T) || softmax(student / T)) per batch, times T² so gradients keep their scale."""
    teacher = tf.nn.softmax(teacher_logits / temperature, axis=-1)
    student = tf.nn.softmax(student_logits / temperature, axis=-1)
    return keras.losses.KLDivergence()(teacher, student) * temperature**2


class Distiller(keras.Model):
    """Trains `student` on `alpha * label loss + (1 - alpha) * distillation loss`; `teacher` stays frozen.

    Compile it like the student alone (`loss` is the label loss on the student's softmax output) and
    save `distiller.student`, which loads without this class. Validation reports the label loss.
    """

    def __init__(self, student, teacher, alpha: float, temperature: float):
        super().__init__(name="distiller")
        self.student, self.alpha, self.temperature = student, alpha, temperature
        self.student_logits = logits_of(student)
        self.teacher_logits = logits_of(teacher)
        self.teacher_logits.trainable = False
        self.total = keras.metrics.Mean(name="loss")
        self.label = keras.metrics.Mean(name="student_loss")
        self.soft = keras.metrics.Mean(name="distillation_loss")

    def compile(self, optimizer, loss, metrics=(), **kwargs):
        super().compile(optimizer=optimizer, metrics=list(metrics), **kwargs)
        self.label_loss = keras.losses.get(loss)

    def call(self, images, training=False):
        return self.student(images, training=training)

    def train_step(self, data):
        images, labels = data
        teacher_logits = self.teacher_logits(images, training=False)
        with tf.GradientTape() as tape:
            student_logits = self.student_logits(images, training=True)
            probabilities = tf.nn.softmax(student_logits)
            label_loss = tf.reduce_mean(self.label_loss(labels, probabilities))
            soft_loss = distillation_loss(teacher_logits, student_logits, self.temperature)
            loss = self.alpha * label_loss + (1 - self.alpha) * soft_loss
        weights = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        for tracker, value in ((self.total, loss), (self.label, label_loss), (self.soft, soft_loss)):
            tracker.update_state(value)
        self.compiled_metrics.update_state(labels, probabilities)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        images, labels = data
        probabilities = self.student(images, training=False)
        self.total.update_state(tf.reduce_mean(self.label_loss(labels, probabilities)))
        self.compiled_metrics.update_state(labels, probabilities)
        return {m.name: m.result() for m in self.metrics if m not in (self.label, self.soft)}
