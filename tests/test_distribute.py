"""Training under tf.distribute: two workers on this machine, one device where TFMOT cannot, and mixed float16."""
import json
import math
import os
import re
import shutil
import socket
import subprocess

import numpy as np
import pytest

from conftest import BIN, ROOT, on_disk, run, write_params
from edgecompress.train import distribute, models, runs, training
from edgecompress.core.backend import keras, tf
from edgecompress.core.errors import UserError


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_the_same_baseline_and_only_the_chief_writes(tmp_path):
    chief, worker = tmp_path / "chief", tmp_path / "worker"
    chief.mkdir()
    write_params(chief, {"train": {"epochs": 1, "distribute": "multi_worker"}})
    run(["python", str(ROOT / "stages/prepare.py"), "data"], chief)
    shutil.copytree(chief, worker)
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index, repo in enumerate((chief, worker)):
        config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", TF_CONFIG=json.dumps(config),
                   TMPDIR=str(tmp_path))
        processes.append(subprocess.Popen(["python", str(ROOT / "stages/train.py"), "data", "models/baseline"],
                                          cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True))
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert (chief / "models/baseline/train.json").is_file() and (chief / "plots/train/baseline.csv").is_file()
    assert not (worker / "models").exists() and not (worker / "plots").exists()
    copy = re.search(r"its copy is in (\S+)", outputs[1]).group(1)
    assert copy.startswith(str(tmp_path))
    chief_weights = models.load(chief / "models/baseline/model").get_weights()
    worker_weights = models.load(copy).get_weights()
    assert len(chief_weights) == len(worker_weights)
    for a, b in zip(chief_weights, worker_weights):
        np.testing.assert_array_equal(a, b)
    assert len((chief / "plots/train/baseline.csv").read_text().splitlines()) == 2  # header, one epoch
    images = json.loads((chief / "data/dataset.json").read_text())["counts"]["train"]["total"]
    steps = math.ceil(images / (2 * 32))  # train.batch_size on each of the two replicas
    assert all(re.search(rf"^{steps}/{steps} - ", output, re.M) for output in outputs), outputs


def test_quantization_aware_training_says_it_trains_on_one_device():
    mirrored = {"distribute": "mirrored", "threads": 0}  # 0: TensorFlow's pools as they are (already started here)
    chosen = runs.strategy(mirrored, "compress qat", "TFMOT cannot")
    assert chosen is tf.distribute.get_strategy() and distribute.is_chief(chosen)
    assert isinstance(runs.strategy(mirrored, "compress pruned"), tf.distribute.MirroredStrategy)


def test_a_mixed_model_computes_in_float16_but_its_head_and_converts_back(tmp_path):
    model = models.build("resnet18", (32, 32, 1), 10, 0.125)
    mixed = distribute.mixed(model)
    policies = {layer.name: layer.compute_dtype for layer in mixed.layers if layer.weights}
    assert policies.pop("logits") == "float32" and set(policies.values()) == {"float16"}
    assert mixed.layers[-1].compute_dtype == "float32" and mixed.output.dtype == tf.float32
    restored = distribute.float32(mixed)
    assert {layer.compute_dtype for layer in restored.layers} == {"float32"}
    images = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    np.testing.assert_array_equal(restored.predict(images, verbose=0), model.predict(images, verbose=0))
    np.testing.assert_allclose(mixed.predict(images, verbose=0), model.predict(images, verbose=0), atol=0.05)
    split = on_disk(tmp_path, {"train": ((images * 255).astype(np.uint8), np.arange(4))})["train"]
    before = mixed.get_weights()
    training.fit(mixed, {"train": split, "val": split}, optimizer="adam", learning_rate=0.01, epochs=1,
                 batch_size=4, seed=0)
    assert isinstance(mixed.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert all(w.dtype == np.float32 for w in mixed.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(before, mixed.get_weights()))


def test_tf_config_is_read_as_tensorflow_documents_it(monkeypatch):
    tf_config = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.task() == (tf_config["cluster"], tf_config["task"])
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG is not the JSON TensorFlow expects"):
        distribute.task()


@pytest.mark.parametrize("threads, expected", [(1, (1, 1)), (0, (0, 0))])  # 0: TensorFlow's default, left alone
def test_a_stage_trains_on_train_threads(threads, expected, tmp_path):
    """The thread pools are set before the strategy starts TensorFlow (a fresh process: they cannot change later)."""
    script = ("import sys; from edgecompress.train import runs; from edgecompress.core.backend import tf; "
              f"runs.strategy({{'threads': {threads}, 'distribute': 'none'}}, 'train'); "
              "print(tf.config.threading.get_intra_op_parallelism_threads(), "
              "tf.config.threading.get_inter_op_parallelism_threads())")
    printed = run([str(BIN / "python"), "-c", script], tmp_path).stdout.split()
    assert tuple(map(int, printed[-2:])) == expected


def test_threads_asked_for_after_tensorflow_started_its_pools_are_one_clear_line(tmp_path):
    script = ("from edgecompress.train import runs; from edgecompress.core.backend import tf; from edgecompress.core.errors import "
              "run_stage; tf.constant(1) + 1; "  # the first op starts the pools
              "run_stage(lambda: runs.strategy({'threads': 1, 'distribute': 'none'}, 'train'))")
    result = run([str(BIN / "python"), "-c", script], tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.threads = 1" in lines[0] and "train.threads to 0" in lines[0], lines
