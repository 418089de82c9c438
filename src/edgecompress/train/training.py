"""Training shared by every stage that fits a model: seeding, augmentation, fit, best-epoch weights, timing."""
import math
import sys
import time
from pathlib import Path

import numpy as np

from edgecompress.data import streams
from edgecompress.core.backend import keras, tf
from edgecompress.core.files import atomic_path
from edgecompress.core.names import CURVE_COLUMNS, MIXED_PRECISION, SHUFFLE_MB


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def augmenter(flip: str, rotation: float, seed: int):
    """A Keras layer stack for random flips and rotations (fraction of a full turn); None if both are off."""
    steps = []
    if flip != "none":
        steps.append(keras.layers.RandomFlip(flip, seed=seed))
    if rotation > 0:
        steps.append(keras.layers.RandomRotation(rotation, fill_mode="constant", seed=seed + 1))
    return keras.Sequential(steps, name="augment") if steps else None


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch (training and validation together)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class KeepBest(keras.callbacks.Callback):
    """Restores the weights of the epoch with the highest validation accuracy when training ends."""

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self._weights = -np.inf, None, None

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_accuracy"] > self.best:
            self.best, self.best_epoch, self._weights = logs["val_accuracy"], epoch, self.model.get_weights()

    def on_train_end(self, logs=None):
        if self._weights is not None:
            self.model.set_weights(self._weights)


def learning_rate_schedule(learning_rate: float, schedule: str, total_steps: int):
    """`constant`, or `cosine`: decay from `learning_rate` to zero over `total_steps`."""
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    return learning_rate


def global_batch(batch_size: int) -> int:
    """The batch of one optimizer step: `batch_size` on each replica of the strategy in scope."""
    return batch_size * tf.distribute.get_strategy().num_replicas_in_sync


def total_steps(splits, batch_size: int, epochs: int) -> int:
    """Optimizer steps in `epochs` epochs over splits['train'] at `batch_size` per replica (the last batch may be
    short)."""
    return math.ceil(len(splits["train"]) / global_batch(batch_size)) * epochs


def is_mixed(model) -> bool:
    return any(layer.dtype_policy.name == MIXED_PRECISION for layer in model.layers)


def accuracy(model, split, batch_size: int, input_range=(0, 1)) -> float:
    """Share of the images of `split` (a prepared split, streamed) that `model` classifies right."""
    right = sum(int((model.predict_on_batch(images).argmax(axis=1) == labels.numpy()).sum())
                for images, labels in streams.batches(split, batch_size, input_range))
    return right / len(split)


def fit(model, splits, *, optimizer, learning_rate, epochs, batch_size, seed, schedule="constant",
        augment=None, keep_best=True, callbacks=(), input_range=(0, 1), shuffle_mb=SHUFFLE_MB):
    """Compile and fit `model` on splits['train'], validating on splits['val'] with one of names.OPTIMIZERS, under
    the tf.distribute strategy in scope at `batch_size` per replica; a mixed float16 model scales its loss. The
    training split streams through a shuffle buffer of `shuffle_mb` megabytes.

    The record has the epochs, the best epoch and the per-epoch history (with each epoch's seconds: only the curve
    carries timings, so that the model's own files are the same bytes on every rerun).
    """
    lr = learning_rate_schedule(learning_rate, schedule, total_steps(splits, batch_size, epochs))
    optimizer_class = type(keras.optimizers.get(optimizer))  # by name, then built with the schedule
    chosen = optimizer_class(lr)
    if is_mixed(model):
        chosen = keras.mixed_precision.LossScaleOptimizer(chosen)
    model.compile(optimizer=chosen, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer, best = EpochTimer(), KeepBest()
    batch = global_batch(batch_size)
    for step in ("train_step", "test_step"):  # traced as written: their branches are Python's or tf.cond already
        setattr(model, step, tf.autograph.experimental.do_not_convert(getattr(model, step)))
    history = model.fit(
        streams.batches(splits["train"], batch, input_range, seed, shuffle_mb, augment),
        validation_data=streams.batches(splits["val"], batch, input_range),
        epochs=epochs,
        callbacks=[timer, *([best] if keep_best else []), *callbacks],
        verbose=1 if sys.stdout.isatty() else 2,  # progress bars on a terminal, one line per epoch in logs
    )
    return {
        "epochs": epochs,
        "best_epoch": (best.best_epoch + 1) if keep_best else epochs,
        "history": [
            {"epoch": i + 1, **{k: float(v[i]) for k, v in history.history.items()}, "seconds": seconds}
            for i, seconds in enumerate(timer.seconds)
        ],
    }


def join_fits(fits: list) -> dict:
    """The fit records of consecutive rounds of fine-tuning as one: epochs add up, the curve runs on."""
    history = [dict(row, epoch=i + 1) for i, row in enumerate(row for fit in fits for row in fit["history"])]
    epochs = sum(fit["epochs"] for fit in fits)
    return {"epochs": epochs, "best_epoch": epochs, "history": history}


def reestimate_batch_norm(model, batches) -> None:
    """Set every BatchNormalization's moving mean and variance to the average over one pass of `batches` (float).

    Pruning changes kernels until its last steps, so the moving statistics lag behind the final weights;
    re-estimating them is what makes the pruned model's inference-mode accuracy match its training accuracy.
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    for step, batch in enumerate(batches):
        for layer in norms:  # momentum 1 - 1/(k + 1): a cumulative average over the batches seen so far
            layer.momentum = step / (step + 1)
        model(batch, training=True)
    for layer, momentum in zip(norms, saved):
        layer.momentum = momentum


def save(model, path) -> None:
    """Save a Keras model as a SavedModel folder at `path`, atomically, without optimizer state.

    SavedModel (not .h5) because QAT models with TFMOT's preserve schemes do not reload from .h5, and the converter
    reads the folder directly. Loading needs no fingerprint.pb, the one file that differs between identical saves.
    Layers Keras rebuilds from their configs are saved without their traced calls: the folder then writes, loads and
    converts about four times faster, to the same .tflite.
    """
    light = rebuilt_from_config(model)
    with atomic_path(path, is_dir=True) as tmp:
        model.save(tmp, save_format="tf", include_optimizer=False, save_traces=not light,
                   signatures=serving_signature(model) if light else None)
        (Path(tmp) / "fingerprint.pb").unlink()  # a random uuid per save: without it a rerun writes the same bytes


def rebuilt_from_config(model) -> bool:
    """Whether every layer of `model` is a Keras or TFMOT class other than Lambda, whose code safe loading skips."""
    return all(type(layer).__module__.startswith(("tf_keras.", "tensorflow_model_optimization."))
               and not isinstance(layer, keras.layers.Lambda)
               for layer in model.submodules if isinstance(layer, keras.layers.Layer))


def serving_signature(model):
    """The inference function of a one-input model as Keras' own default signature has it (input and output keyed
    by their layer names), for the converter."""
    spec = tf.TensorSpec(model.inputs[0].shape, model.inputs[0].dtype, name=model.input_names[0])
    # a tf.function, not its concrete function: only that form saves under a distribution strategy
    return tf.function(lambda images: {model.output_names[0]: model(images, training=False)}, input_signature=[spec])


def untrained() -> dict:
    """The fit record of a model taken as it is (train.epochs 0): no epoch, no curve."""
    return {"epochs": 0, "best_epoch": 0, "history": []}


def write_history(history: list, path) -> None:
    """Per-epoch training curve as CSV (epoch, loss, accuracy, val_loss, val_accuracy, seconds) for `dvc plots`."""
    columns = list(history[0]) if history else list(CURVE_COLUMNS)
    with atomic_path(path) as tmp:
        lines = [",".join(columns)] + [",".join(f"{row[c]:.6g}" for c in columns) for row in history]
        tmp.write_text("\n".join(lines) + "\n")
