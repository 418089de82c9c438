"""A training stage's inputs and outputs on disk: the splits, models/<name>/{model,train.json}, the curve.

Shared by every stage that trains or fine-tunes, so that each stage script only says what it does.
"""
from edgecompress import data, models, training
from edgecompress.files import read_json, write_json


def splits():
    """The prepared train and val splits."""
    return {name: data.load_split(f"data/{name}.npz") for name in ("train", "val")}


def load(name: str):
    """(Keras model, training record) of a model an upstream stage saved."""
    record = read_json(f"models/{name}/train.json")  # first: a clear error if the upstream stage never ran
    return models.load(f"models/{name}/model"), record


def fine_tune(model, splits, train_cfg: dict, epochs: int, learning_rate: float, seed: int, callbacks=()):
    """Fit a compressed copy with the baseline's optimizer, batch size and augmentation, at its own learning rate.

    The learning rate decays along a cosine; the last epoch's weights are kept (an earlier epoch may predate
    the final sparsity or clustering).
    """
    return training.fit(model, splits, optimizer=train_cfg["optimizer"], learning_rate=learning_rate,
                        schedule="cosine", epochs=epochs, batch_size=train_cfg["batch_size"], seed=seed,
                        augment=augmenter(train_cfg, seed), keep_best=False, callbacks=callbacks)


def build_student(distill_cfg: dict, dataset_card: dict):
    """The untrained student that the distill section describes, for the prepared dataset."""
    return models.build(distill_cfg["student"], dataset_card["image_shape"], len(dataset_card["classes"]),
                        distill_cfg["width"], distill_cfg["input_size"])


def train_student(model, train_cfg: dict, distill_cfg: dict, seed: int):
    """Fit a student (or its Distiller) from scratch with the baseline's optimizer, schedule and augmentation."""
    return training.fit(model, splits(), optimizer=train_cfg["optimizer"], learning_rate=distill_cfg["learning_rate"],
                        schedule=train_cfg["schedule"], epochs=distill_cfg["epochs"],
                        batch_size=train_cfg["batch_size"], seed=seed, augment=augmenter(train_cfg, seed),
                        keep_best=train_cfg["keep_best"])


def augmenter(train_cfg: dict, seed: int):
    """The baseline's augmentation (train.augment), for every stage that trains on its data."""
    return training.augmenter(train_cfg["augment"]["flip"], train_cfg["augment"]["rotation"], seed)


def save(name: str, model, record: dict, **facts) -> None:
    """Write models/<name>/model, plots/train/<name>.csv and models/<name>/train.json (record + facts)."""
    training.save(model, f"models/{name}/model")
    training.write_history(record.pop("history"), f"plots/train/{name}.csv")
    write_json(f"models/{name}/train.json", {**record, **facts})
