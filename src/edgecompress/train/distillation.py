"""Knowledge distillation (Hinton et al.): a student learns from the labels and from a frozen teacher's logits."""
from edgecompress.core.backend import keras, tf
from edgecompress.train.models import logits


def outputs_of(model, layer_names=()) -> keras.Model:
    """The same model (shared weights) returning its logits, the input of its final softmax, then the outputs of
    the layers named."""
    tapped = [model.get_layer(name).output for name in layer_names]
    return keras.Model(model.inputs, [logits(model), *tapped], name=f"{model.name}_taps")


def distillation_loss(teacher_logits, student_logits, temperature: float):
    """KL(softmax(teacher / T) || softmax(student / T)) per batch, times T² so gradients keep their scale."""
    teacher = tf.nn.softmax(teacher_logits / temperature, axis=-1)
    student = tf.nn.softmax(student_logits / temperature, axis=-1)
    return keras.losses.KLDivergence()(teacher, student) * temperature**2


class Distiller(keras.Model):
    """Trains `student` on `alpha * label loss + (1 - alpha) * distillation loss`; `teacher` stays frozen.

    Compile it like the student alone (`loss` is the label loss on the student's softmax output) and
    save `distiller.student`, which loads without this class. Validation reports the label loss.
    A subclass adds loss `terms` on the outputs of `taps`, (student layer, teacher layer) pairs.
    """

    terms = ("student_loss", "distillation_loss")  # reported beside the total, unweighted

    def __init__(self, student, teacher, alpha: float, temperature: float, taps=()):
        super().__init__(name="distiller")
        self.student, self.alpha, self.temperature = student, alpha, temperature
        self.student_outputs = outputs_of(student, [s for s, _ in taps])
        self.teacher_outputs = outputs_of(teacher, [t for _, t in taps])
        self.teacher_outputs.trainable = False
        self.trackers = [keras.metrics.Mean(name=name) for name in ("loss", *self.terms)]

    def compile(self, optimizer, loss, metrics=(), **kwargs):
        super().compile(optimizer=optimizer, metrics=list(metrics), **kwargs)
        self.label_loss = keras.losses.get(loss)

    def call(self, images, training=False):
        return self.student(images, training=training)

    def loss_terms(self, labels, probabilities, teacher_outputs, student_outputs) -> dict:
        """{term: value} for every name in `terms`; outputs: logits first, then the tapped layers'."""
        return {"student_loss": tf.reduce_mean(self.label_loss(labels, probabilities)),
                "distillation_loss": distillation_loss(teacher_outputs[0], student_outputs[0], self.temperature)}

    def total(self, terms: dict):
        return self.alpha * terms["student_loss"] + (1 - self.alpha) * terms["distillation_loss"]

    def train_step(self, data):
        images, labels = data
        teacher_outputs = tf.nest.flatten(self.teacher_outputs(images, training=False))
        with tf.GradientTape() as tape:
            student_outputs = tf.nest.flatten(self.student_outputs(images, training=True))
            probabilities = tf.nn.softmax(student_outputs[0])
            terms = self.loss_terms(labels, probabilities, teacher_outputs, student_outputs)
            loss = self.total(terms)
            per_replica = loss / self.distribute_strategy.num_replicas_in_sync  # replicas' gradients are summed
        weights = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(per_replica, weights), weights))
        for tracker, value in zip(self.trackers, (loss, *(terms[name] for name in self.terms))):
            tracker.update_state(value)
        self.compiled_metrics.update_state(labels, probabilities)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        images, labels = data
        probabilities = self.student(images, training=False)
        self.trackers[0].update_state(tf.reduce_mean(self.label_loss(labels, probabilities)))
        self.compiled_metrics.update_state(labels, probabilities)
        return {m.name: m.result() for m in self.metrics if m not in self.trackers[1:]}
