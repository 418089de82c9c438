"""Where training runs (train.distribute): one device, every local GPU, or the workers TF_CONFIG names; and
mixed float16 on a GPU (train.mixed_precision). TensorFlow places work on a GPU whenever it sees one."""
import json
import os
import tempfile
from pathlib import Path

from edgecompress.core.backend import keras, tf
from edgecompress.core.errors import UserError
from edgecompress.train.models import logits
from edgecompress.core.names import MIXED_PRECISION


def gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def use_threads(threads: int) -> None:
    """TensorFlow's intra- and inter-op thread pools at `threads` threads each (0 leaves TensorFlow's default, one
    per core); call it before any TensorFlow work."""
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow sizes its pools once, when its first op runs
        raise UserError(f"params: train.threads = {threads}, but TensorFlow already started its thread pools in this "
                        "process; run the stage in a fresh process, or set train.threads to 0 to train on the "
                        "pools it has") from None


def strategy(name: str):
    """The tf.distribute strategy that one of names.STRATEGIES names; build it before any other TensorFlow work."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        cluster, _ = task()
        if not cluster.get("worker") and not cluster.get("chief"):
            raise UserError("params: train.distribute = 'multi_worker' needs TF_CONFIG naming the workers, e.g. "
                            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                            '"index": 0}}, set on every machine')
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def task() -> tuple:
    """(cluster, task) from TF_CONFIG as TensorFlow documents it; ({}, {}) when it is not set."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}, {}
    try:
        config = json.loads(raw)
        return dict(config.get("cluster", {})), dict(config.get("task", {}))
    except (ValueError, TypeError, AttributeError):
        raise UserError(f"TF_CONFIG is not the JSON TensorFlow expects ({raw[:80]!r}); expected "
                        '{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": 0}}') from None


def is_chief(chosen) -> bool:
    """Whether this process writes the outputs under `chosen`: always, but for a multi-worker strategy, where the
    chief does (worker 0 of a cluster without one)."""
    if not isinstance(chosen, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = chosen.cluster_resolver
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def scratch_dir(name: str) -> Path:
    """A new folder outside the repository for what a worker that is not the chief writes."""
    return Path(tempfile.mkdtemp(prefix=f"edgecompress-{name}-worker-"))


def check_mixed_precision(enabled: bool) -> None:
    """Refuse train.mixed_precision without a GPU: float16 on a CPU is slower, not faster."""
    if enabled and not gpus():
        raise UserError("params: train.mixed_precision = true is not allowed on this machine: TensorFlow sees no "
                        "GPU; expected false (mixed float16 speeds up training on GPUs only)")


def with_dtype(model, policy: str, keep_float32=()) -> keras.Model:
    """A copy of the functional `model` (same weights) whose layers compute in `policy`, but those named in
    `keep_float32`, which stay float32."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer" and "dtype" in layer["config"]:
            layer["config"]["dtype"] = "float32" if layer["config"]["name"] in keep_float32 else policy
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def mixed(model) -> keras.Model:
    """`model` computing in float16 with float32 weights, but its logits and final softmax."""
    head = [logits(model).node.layer.name, model.layers[-1].name]
    return with_dtype(model, MIXED_PRECISION, keep_float32=head)


def float32(model) -> keras.Model:
    """`model` computing in float32 throughout again: what every later stage and the converter read."""
    return with_dtype(model, "float32")
