"""The training record (models/<model>/train.json): what made a model, written and read through one type."""
from dataclasses import asdict, dataclass, fields

from edgecompress.core.errors import UserError
from edgecompress.core.files import read_json, write_json


@dataclass(frozen=True)
class TrainingRecord:
    epochs: int
    best_epoch: int                  # the epoch whose weights were kept (1-based)
    params_count: int                # counted on the saved model
    macs: int = None                 # multiply-accumulates per image, counted on the saved model
    input_range: tuple = (0, 1)      # what the model's float pixels span: every stage scales images onto it
    augment: dict = None             # how its training images were augmented ({flip, rotation}); None: not at all
    val_accuracy: float = None       # a fine-tuned model's on the validation split, in inference mode
    upstream_val_accuracy: float = None  # the model it was fine-tuned from, measured the same way
    architecture: str = None         # a registry name, or the model file the baseline came from
    initial_weights: str = None      # the weights file a registry architecture started from
    initial_weight_layers: int = None  # how many of its layers took weights from that file
    source: str = None               # the upstream model it was fine-tuned from
    teacher: str = None              # the model it was distilled from
    quantization_aware: bool = False
    pruned_layers: tuple = ()
    clustered_layers: tuple = ()
    clusters: int = None
    unsupported_layers: tuple = ()   # "name (Type)" of layers with weights the method left as they are
    skipped_layers: tuple = ()       # the layers its method's skip_layers named, by their names in this model
    method: str = None               # what made it: a method's params section, or a training stage's name
    facts: dict = None               # that method's or stage's own namespace: what it alone knows it did

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def write(self, path) -> None:
        write_json(path, self.as_dict())

    @classmethod
    def read(cls, path) -> "TrainingRecord":
        """The record at `path`; a missing file or one of another shape is a UserError naming it."""
        values = read_json(path)
        unknown = values.keys() - {f.name for f in fields(cls)}
        if unknown:
            raise UserError(f"{path} has fields a training record does not have ({', '.join(sorted(unknown))}); "
                            "rerun the stage that writes it (dvc repro)")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def damaged_by_fine_tuning(record: dict, points: float) -> bool:
    """Whether a fine-tuned model's record (as a dict) shows it more than `points` of validation accuracy below its
    upstream model."""
    before, after = record["upstream_val_accuracy"], record["val_accuracy"]
    return after is not None and 100 * (before - after) > points
