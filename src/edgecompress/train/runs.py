"""A training stage's files: the prepared splits, models/<model>/{model,train.json} and its training curve.

Shared by every stage that trains or fine-tunes, so that each stage script only says what it does.
"""
from pathlib import Path

from edgecompress import data
from edgecompress.train import distribute, macs, models, training
from edgecompress.data import streams
from edgecompress.core.params import UPSTREAM_AUGMENT
from edgecompress.core.record import TrainingRecord, damaged_by_fine_tuning

CURVES = Path("plots/train")  # <model>.csv per trained model (its epochs' timings too): read by the report


def splits(data_dir):
    """The prepared train and val splits."""
    return {name: data.open_split(Path(data_dir) / name) for name in ("train", "val")}


def load(model_dir):
    """(Keras model, TrainingRecord) of a model an upstream stage saved."""
    record = TrainingRecord.read(Path(model_dir) / "train.json")  # first: a clear error if its stage never ran
    return models.load(Path(model_dir) / "model", record.quantization_aware), record


def strategy(train_cfg: dict, stage: str, undistributable: str = ""):
    """The strategy that train.distribute names, or one device with one line saying why where `stage` cannot train
    under one, on train.threads threads. Build it first: a multi-worker strategy starts before any other
    TensorFlow work."""
    distribute.use_threads(train_cfg["threads"])
    name = train_cfg["distribute"]
    if undistributable and name != "none":
        print(f"{stage}: {undistributable}; it trains on one device (train.distribute {name} serves the others)")
        name = "none"
    return distribute.strategy(name)


def augmenter(recipe, seed: int):
    """The Keras layers that augment training images as `recipe` says ({flip, rotation}; None: not at all)."""
    return training.augmenter(recipe["flip"], recipe["rotation"], seed) if recipe else None


def compress(method, source_dir, model_dir, data_dir, train_cfg: dict, seed: int, damage_points: float,
             chosen=None) -> None:
    """Apply `method` to the model in `source_dir`, fine-tune, finish under the strategy `chosen` (default: one
    device), and save the result in `model_dir`; print one line where validation accuracy fell by more than
    `damage_points`."""
    chosen = chosen or distribute.strategy("none")
    with chosen.scope():
        model, upstream, fit = fine_tuned(method, source_dir, data_dir, train_cfg, seed)
    source = Path(source_dir).name
    fault = damage(Path(model_dir).name, source, fit, damage_points)
    if fault:
        print(fault)
    save(model_dir, model, fit, chief=distribute.is_chief(chosen), source=source, input_range=upstream.input_range,
         method=method.name, facts=method.facts(), skipped_layers=method.settings.get("skip_layers", ()),
         **method.properties())


def damage(name: str, source: str, fit: dict, points: float) -> str:
    """The line saying that fine-tuning `name` from `source` lost more than `points` of validation accuracy, and
    what to check; empty where it did not."""
    if not damaged_by_fine_tuning(fit, points):
        return ""
    before, after = fit["upstream_val_accuracy"], fit["val_accuracy"]
    recipe = fit["augment"] or "none"
    return (f"{name}: validation accuracy fell from {before:.4f} ({source}) to {after:.4f}, more than "
            f"report.damage_points ({points}); check its fine-tuning: the augmentation ({recipe}; a method's augment "
            "setting overrides its upstream's), the learning rate and the epochs")


def fine_tuned(method, source_dir, data_dir, train_cfg: dict, seed: int) -> tuple:
    """(model, upstream record, fit record) of `method` applied to the model in `source_dir`, fine-tuned, finished;
    the fit record has the augmentation used and the validation accuracy of the upstream model and the result.

    Fine-tuning uses the baseline's optimizer and batch size and the upstream model's own augmentation (or the
    method's `augment`) at the method's learning rate, decayed along a cosine; the last epoch's weights are kept
    (an earlier one may predate the final sparsity or clustering).
    """
    model, upstream = load(source_dir)
    parts = splits(data_dir)
    steps = training.total_steps(parts, train_cfg["batch_size"], method.epochs)
    recipe = upstream.augment if method.settings["augment"] == UPSTREAM_AUGMENT else method.settings["augment"]

    def validation_accuracy(measured):
        return training.accuracy(measured, parts["val"], train_cfg["batch_size"], upstream.input_range)

    def fine_tune(trainable, epochs, callbacks=()):
        return training.fit(trainable, parts, optimizer=train_cfg["optimizer"], learning_rate=method.learning_rate,
                            schedule="cosine", epochs=epochs, batch_size=train_cfg["batch_size"], seed=seed,
                            augment=augmenter(recipe, seed), keep_best=False, callbacks=callbacks,
                            input_range=upstream.input_range)

    train_images = streams.images(parts["train"], train_cfg["batch_size"], upstream.input_range)

    def trial(trainable, epochs, measured=None):
        """Fit `trainable` for `epochs`; the validation accuracy of `measured` (default: it) with fresh BatchNorm
        statistics, which a short run leaves far behind its weights."""
        measured = trainable if measured is None else measured
        if epochs:
            fine_tune(trainable, epochs)
            training.reestimate_batch_norm(measured, train_images)
        return validation_accuracy(measured)

    method.name_layers(model)
    before = validation_accuracy(model)
    training.seed_everything(seed)
    method.calibrate(model, trial)
    fits = []
    for _ in range(method.rounds):
        trainable = method.apply(model, upstream, steps)
        fits.append(fine_tune(trainable, method.epochs, method.callbacks()))
        model = method.finish(trainable, train_images)
    fit = {**training.join_fits(fits), "augment": recipe, "upstream_val_accuracy": before,
           "val_accuracy": validation_accuracy(model)}
    return model, upstream, fit


def build_student(distill_cfg: dict, dataset_card: dict):
    """The untrained student that the distill section describes, for the prepared dataset."""
    return models.build(distill_cfg["student"], dataset_card["image_shape"], len(dataset_card["classes"]),
                        distill_cfg["width"], distill_cfg["input_size"])


def train_student(model, data_dir, train_cfg: dict, distill_cfg: dict, seed: int, input_range) -> dict:
    """Fit a student (or its Distiller) from scratch with the baseline's optimizer, schedule and augmentation
    (train.augment, which the fit record names)."""
    fit = training.fit(model, splits(data_dir), optimizer=train_cfg["optimizer"],
                       learning_rate=distill_cfg["learning_rate"], schedule=train_cfg["schedule"],
                       epochs=distill_cfg["epochs"], batch_size=train_cfg["batch_size"], seed=seed,
                       augment=augmenter(train_cfg["augment"], seed), keep_best=train_cfg["keep_best"],
                       input_range=input_range)
    return {**fit, "augment": train_cfg["augment"]}


def save(model_dir, model, fit: dict, chief: bool = True, **facts) -> None:
    """Write model_dir/model, model_dir/train.json (the fit, the facts, the counted parameters) and the curve.

    A worker that is not the `chief` saves its model outside the repository instead (saving is collective).
    """
    model_dir = Path(model_dir)
    if not chief:
        elsewhere = distribute.scratch_dir(model_dir.name) / "model"
        training.save(model, elsewhere)
        print(f"{model_dir.name}: this worker is not the chief, which writes {model_dir}; its copy is in {elsewhere}")
        return
    training.save(model, model_dir / "model")
    training.write_history(fit.pop("history"), CURVES / f"{model_dir.name}.csv")
    TrainingRecord(**fit, params_count=models.count_parameters(model), macs=macs.count(model),
                   **facts).write(model_dir / "train.json")
