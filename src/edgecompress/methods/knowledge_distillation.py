"""Paper 004's distillation step: fine-tune the upstream (pruned) model as the student of a frozen teacher.

The weight of the labels against the teacher's soft targets is a param, or `auto`: paper 004's formula 7 shares
it in proportion to the gain each source alone gives a fresh copy of the student in a short probe run.
"""
from edgecompress.core.params import fine_tuning, integer, is_number, number, rule
from edgecompress.methods.base import Method


def allocate(gain_labels: float, gain_teacher: float) -> float:
    """Formula 7: the labels' weight I_labels / (I_labels + I_teacher); a source that did not help counts 0, and
    when neither helped both weigh 0.5."""
    labels, teacher = max(gain_labels, 0.0), max(gain_teacher, 0.0)
    return labels / (labels + teacher) if labels + teacher > 0 else 0.5


DISTILLATION = {  # the settings of every method that fine-tunes by distillation
    "alpha": rule("auto (paper 004's formula 7 from probe runs) or a number in [0, 1]",
                  lambda v: v == "auto" or (is_number(v) and 0 <= v <= 1)),
    "probe_epochs": integer(1),
    "temperature": number(0, 1000, low_open=True),
}


class DistillFineTune(Method):
    """Fine-tune on `alpha` x label loss + (1 - alpha) x distillation loss from the teacher given by `use_teacher`."""

    rules = fine_tuning(**DISTILLATION)
    distills = True

    def use_teacher(self, model, name: str) -> None:
        self.teacher, self.teacher_name = model, name

    def calibrate(self, model, trial):
        alpha = self.settings["alpha"]
        if alpha != "auto":
            self.alpha, self.weights = alpha, {}
            return
        from edgecompress.core.backend import keras

        fresh = keras.models.clone_model(model)  # the student's architecture, newly initialised: paper 004's C
        start, epochs = fresh.get_weights(), self.settings["probe_epochs"]
        untrained = trial(fresh, 0)
        gains = {}
        for source, probe_alpha in (("labels", 1.0), ("teacher", 0.0)):
            fresh.set_weights(start)
            gains[source] = trial(self._distiller(fresh, probe_alpha), epochs, fresh) - untrained
        self.alpha = allocate(gains["labels"], gains["teacher"])
        self.weights = {"probe_epochs": epochs, "untrained_accuracy": untrained,
                        "gain_labels": gains["labels"], "gain_teacher": gains["teacher"]}

    def _distiller(self, student, alpha: float):
        from edgecompress.train.distillation import Distiller

        return Distiller(student, self.teacher, alpha, self.settings["temperature"])

    def apply(self, model, upstream, steps):
        return self._distiller(model, self.alpha)

    def finish(self, model, train_images):
        return model.student

    def properties(self):
        return {"teacher": self.teacher_name}

    def facts(self):
        return {"labels": self.alpha, "teacher": 1 - self.alpha, "temperature": self.settings["temperature"],
                **self.weights}

    @staticmethod
    def describe(model: str, record: dict) -> str:
        return f"`{model}`: {distillation_text(record)}"


def distillation_text(record: dict) -> str:
    """The report's words on how a model was distilled, from its training record."""
    facts = record["facts"]
    text = (f"distilled from `{record['teacher']}`, label loss weight {facts['labels']:.3f}, teacher "
            f"{facts['teacher']:.3f}")
    if "gain_labels" not in facts:
        return text + " (params)."
    return text + (f", allocated by paper 004's formula 7 from {facts['probe_epochs']}-epoch probes of a fresh "
                   f"student: labels alone gained {100 * facts['gain_labels']:+.1f} points, the teacher alone "
                   f"{100 * facts['gain_teacher']:+.1f} (from {facts['untrained_accuracy']:.3f}).")


METHODS = {"filter_prune_kd": DistillFineTune}
