"""Evaluate over SSH against a real OpenSSH server on 127.0.0.1 with throwaway host and user keys."""
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import LITERT_RAM_REPEATS_WITHIN, ROOT, run, write_params

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def client_config(folder: Path, port: int, key: Path) -> Path:
    """An ssh config with a Host alias, as a user would write for their board."""
    path = folder / f"ssh_config_{key.name}"
    path.write_text(f"Host edgepi\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
                    f"  IdentityFile {key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
                    "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    return path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on a free port of 127.0.0.1 accepting one throwaway key; yields (port, client config, folder)."""
    assert Path(SSHD).is_file(), "sshd not found: install Debian's openssh-server (.ci/run does)"
    folder = tmp_path_factory.mktemp("ssh")
    os.chmod(folder, 0o700)
    host_key, user_key = keygen(folder / "host_key"), keygen(folder / "user_key")
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {folder}/sshd.pid\n"
        f"AuthorizedKeysFile {folder}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nLogLevel ERROR\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # the privilege separation directory sshd insists on as root
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()
        time.sleep(0.1)
    yield port, client_config(folder, port, user_key), folder
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def evaluation(pipeline, tmp_path):
    """What evaluate@baseline reads, copied out of the tiny pipeline: run the stage here without touching it."""
    for rel in ("models/baseline/tflite", "models/baseline/train.json", "data/test", "data/dataset.json"):
        src, dest = pipeline / rel, tmp_path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest)
    return tmp_path


def evaluate(folder, **settings):
    write_params(folder, {"evaluate": settings})
    return run(["python", str(ROOT / "stages/evaluate.py"), "data", "models/baseline", "models/baseline", "metrics"],
               folder, check=False)


def test_evaluate_without_the_reference_model_is_one_line(evaluation):
    (evaluation / "models/baseline/tflite/fp32.tflite").unlink()
    result = evaluate(evaluation)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: evaluate: the reference model models/baseline/tflite/fp32.tflite is "
                                     "missing: every model is compared with it, so convert.quantizations must include "
                                     "fp32")
    assert not (evaluation / "metrics").exists()


def remote_folders():
    """The runner's temporary folders on the device (this machine; ssh sessions start without our TMPDIR)."""
    return set(Path("/tmp").glob("edgecompress.*"))


def test_evaluate_over_ssh_measures_what_the_local_run_measures(sshd, evaluation, pipeline):
    _, config, _ = sshd
    before = remote_folders()
    result = evaluate(evaluation, device="edgepi", python=sys.executable, ssh_options=["-F", str(config)])
    assert result.returncode == 0, result.stderr
    remote = json.loads((evaluation / "metrics/baseline.json").read_text())
    local = json.loads((pipeline / "metrics/baseline.json").read_text())
    for quant in ("fp32", "fp16", "dynamic", "int8", "int16x8"):
        assert remote[quant]["accuracy"] == local[quant]["accuracy"], quant
        assert remote[quant]["size_bytes"] == local[quant]["size_bytes"]
        for key in ("accuracy_ci95", "flips_lost", "flips_gained", "mcnemar_p"):  # the reference ran there too
            assert remote[quant][key] == local[quant][key], (quant, key)
        for key in ("latency_p50_ms", "latency_p90_ms", "latency_mean_ms", "total_s"):
            assert remote[quant][key] > 0, (quant, key)
    for key in ("tflm", "ram_bytes", "flash_bytes", "tflm_accuracy", "tflm_disagreements"):  # TFLM: measured here
        assert remote["int8"][key] == local["int8"][key], key
    for quant in ("fp32", "int8"):  # LiteRT's RAM, measured by the runner shipped alone to the device
        assert isinstance(remote[quant]["litert_ram_bytes"], int), quant
        moved = abs(remote[quant]["litert_ram_bytes"] - local[quant]["litert_ram_bytes"])
        assert moved <= LITERT_RAM_REPEATS_WITHIN, quant
    assert remote["device"]["machine"] and remote["device"]["cpu"] and remote["device"]["runtime"]
    assert remote["protocol"] == {"threads": 1, "warmup": 2, "runs": 1, "batch_size": 1, "images": 360}
    assert remote_folders() == before  # the temporary folder on the device is gone


@pytest.mark.parametrize("case, words", [
    ("unreachable", ["evaluate.device edgecompress@127.0.0.1", "Connection refused"]),
    ("wrong key", ["evaluate.device edgepi", "Permission denied"]),
    ("no interpreter", ["evaluate.device edgepi", "/nonexistent/python3", "evaluate.python"]),
    ("timeout", ["evaluate.device edgepi", "could not run the benchmark within 3 s"]),
])
def test_device_faults_are_one_line_and_leave_no_metrics(sshd, evaluation, tmp_path_factory, case, words):
    port, config, folder = sshd
    settings = {"device": "edgepi", "python": sys.executable, "ssh_options": ["-F", str(config)]}
    if case == "unreachable":
        settings.update(device="edgecompress@127.0.0.1", ssh_options=["-o", f"Port={free_port()}"])
    elif case == "wrong key":
        stranger = keygen(tmp_path_factory.mktemp("stranger") / "key")
        settings["ssh_options"] = ["-F", str(client_config(folder, port, stranger))]
    elif case == "no interpreter":
        settings["python"] = "/nonexistent/python3"
    else:  # a device slower than the timeout: its Python takes 10 s to start
        slow = tmp_path_factory.mktemp("slow") / "python"
        slow.write_text(f"#!/bin/sh\nsleep 10\nexec {sys.executable} \"$@\"\n")
        slow.chmod(0o755)
        settings.update(python=str(slow), run_timeout=3)
    before = remote_folders()
    result = evaluate(evaluation, **settings)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not (evaluation / "metrics").exists()
    assert remote_folders() == before
