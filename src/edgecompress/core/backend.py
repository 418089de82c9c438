"""The one place that selects tf_keras (Keras 2) before TensorFlow is imported (TFMOT needs it), and quiets
TensorFlow's native start-up lines, which it writes before its own log level applies."""
import contextlib
import os
import re
import sys

from edgecompress.core.files import captured_stderr

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# what every TensorFlow start prints on a CPU-only machine: facts, not faults
START_UP_NOISE = re.compile(r"absl::InitializeLog\(\)|oneDNN custom operations are on|cudart_stub\.cc|"
                            r"failed call to cuInit|cpu_feature_guard\.cc|To enable the following instructions")


@contextlib.contextmanager
def _start_up_noise_filtered():
    """Capture the process's native stderr meanwhile, then pass on every line that is not START_UP_NOISE."""
    lines = []
    try:
        with captured_stderr(lines):
            yield
    finally:
        sys.stderr.write("".join(line for line in lines if not START_UP_NOISE.search(line)))


with _start_up_noise_filtered():
    import tensorflow as tf
    import tf_keras as keras

    tf.config.list_physical_devices()  # device discovery logs its own start-up lines: get them over with here

__all__ = ["tf", "keras", "tfmot"]


def __getattr__(name):
    """TFMOT (1.3 s of imports) loads on first use: the compression methods need it, conversion and training not."""
    if name == "tfmot":
        import tensorflow_model_optimization

        return tensorflow_model_optimization
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
