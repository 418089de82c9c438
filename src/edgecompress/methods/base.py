"""The interface every compression method implements, after TFMOT's verbs: apply it, fine-tune, strip it."""
from edgecompress.core.params import fine_tuning
from edgecompress.core.record import TrainingRecord


class Method:
    """A compression method configured by its params section: `apply`, fit with `callbacks`, then `finish`.

    Every section has the fine-tuning `epochs` and `learning_rate`; `properties` and `facts` go into the training
    record, `describe` into the report. A method with several `rounds` is applied, fitted and finished once per
    round, each round on the last one's model. A module imports TensorFlow only inside its verbs, so params and
    the report read it without.
    """

    rules = fine_tuning()  # its params section's keys and what each allows
    rounds = 1
    undistributable = ""  # why fine-tuning cannot run under a tf.distribute strategy; empty where it can
    name = ""  # the params section that configures it (set by methods.create)
    distills = False  # whether it learns from a teacher (`use_teacher`), which its models entry must name

    @classmethod
    def check(cls, settings: dict, key) -> None:
        """Rules that relate two of its settings; `key(setting)` names a setting as the user wrote it (its
        section's key or a models entry's `with`). A fault is a UserError."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.epochs, self.learning_rate = settings["epochs"], settings["learning_rate"]

    def written(self, key: str) -> str:
        """Setting `key` as the user wrote it, for faults: its section's key (methods.configured replaces this with
        one that knows a models entry's `with`)."""
        return f"{self.name}.{key}"

    def name_layers(self, model) -> None:
        """Read its skip list, if it has one, as names of `model`'s layers (`first` and `last` resolved)."""
        if "skip_layers" in self.settings:
            from edgecompress.train.models import layer_names

            skip = layer_names(model, self.settings["skip_layers"], self.written("skip_layers"))
            self.settings = {**self.settings, "skip_layers": skip}

    def calibrate(self, model, trial) -> None:
        """Settle settings from short runs before `apply`; `trial(trainable, epochs, measured=None)` fits `trainable`
        and returns the validation accuracy of `measured` (a model it trains, by default itself)."""

    def apply(self, model, upstream: TrainingRecord, steps: int):
        """A trainable copy of `model` with the method applied; `steps`: optimizer steps of the fine-tuning."""
        raise NotImplementedError

    def callbacks(self) -> list:
        return []

    def finish(self, model, train_images):
        """The model to save once fine-tuning is over; `train_images` (batches of float images) for what needs data."""
        return model

    def properties(self) -> dict:
        """What the saved model's record says of its weights (TrainingRecord fields: the layers pruned or clustered,
        those left as they are), which later methods and the evaluation read."""
        return {}

    def facts(self) -> dict:
        """What this method alone knows of what it did: the record keeps it in the method's own namespace."""
        return {}

    @staticmethod
    def describe(model: str, record: dict) -> str:
        """The report's sentence on what the method did to `model`, from its training record (its own facts under
        `facts`); empty for none."""
        return ""
