"""A training stage's inputs and outputs on disk: the splits, models/<name>/{model,train.json}, the curve.

Shared by every stage that trains or fine-tunes, so that each stage script only says what it does.
"""
import math

from edgecompress import data, models, training
from edgecompress.files import read_json, write_json


def splits():
    """The prepared train and val splits."""
    return {name: data.load_split(f"data/{name}.npz") for name in ("train", "val")}


def steps(splits, batch_size: int, epochs: int) -> int:
    """Optimizer steps in `epochs` epochs over the training split."""
    return math.ceil(len(splits["train"][1]) / batch_size) * epochs


def load(name: str):
    """(Keras model, training record) of a model an upstream stage saved."""
    record = read_json(f"models/{name}/train.json")  # first: a clear error if the upstream stage never ran
    return models.load(f"models/{name}/model"), record


def fine_tune(model, splits, train_cfg: dict, epochs: int, learning_rate: float, seed: int, callbacks=()):
    """Fit a compressed copy with the baseline's optimizer, batch size and augmentation, at its own learning rate.

    The learning rate decays along a cosine; the last epoch's weights are kept (an earlier epoch may predate
    the final sparsity or clustering).
    """
    augment = training.augmenter(train_cfg["augment"]["flip"], train_cfg["augment"]["rotation"], seed)
    return training.fit(model, splits, optimizer=train_cfg["optimizer"], learning_rate=learning_rate,
                        schedule="cosine", epochs=epochs, batch_size=train_cfg["batch_size"], seed=seed,
                        augment=augment, keep_best=False, callbacks=callbacks)


def save(name: str, model, record: dict, **facts) -> None:
    """Write models/<name>/model, plots/train/<name>.csv and models/<name>/train.json (record + facts)."""
    training.save(model, f"models/{name}/model")
    training.write_history(record.pop("history"), f"plots/train/{name}.csv")
    write_json(f"models/{name}/train.json", {**record, **facts})
