"""edgecompress.tools.preload: a TensorFlow stage forked from the server behaves as the same script run fresh."""
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, write_params
from edgecompress.core.names import PRELOAD_SOCKET
from edgecompress.tools import preload

# a stage script: reports what a fresh process would see, then ends as its first argument says
STAGE = '''import os, sys, time
from edgecompress.core.errors import UserError, run_stage


def main(ending, note="-"):
    preloaded = "tensorflow" in sys.modules  # before anything here imports it
    print(f"preloaded={preloaded} pid={os.getpid()} cwd={os.getcwd()} argv={sys.argv} NOTE={os.environ.get('NOTE')} "
          f"TF_USE_LEGACY_KERAS={os.environ.get('TF_USE_LEGACY_KERAS')}")
    print("to stderr", file=sys.stderr)
    if ending == "user_error":
        raise UserError("epochs = -1, but at least 1")
    if ending == "crash":
        raise RuntimeError("a bug")
    if ending == "exit":
        sys.exit(3)
    if ending == "sleep":
        open("child.pid", "w").write(str(os.getpid()))
        time.sleep(60)


if __name__ == "__main__":
    run_stage(main, loads_tensorflow=True)
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("stage")
    (path / "stage.py").write_text(STAGE)
    return path


@pytest.fixture(scope="module")
def env():
    """The environment that hands stages to a server, as `make run` has it: without what backend sets."""
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("TF_USE_LEGACY_KERAS", raising=False)
            server_env = stack.enter_context(preload.server())
        yield server_env


def stage(folder, env, *args, note="n"):
    return subprocess.run([sys.executable, "stage.py", *args], cwd=folder, env={**env, "NOTE": note},
                          capture_output=True, text=True, timeout=120)


def test_a_stage_handed_to_the_server_sees_its_own_arguments_directory_environment_and_streams(folder, env):
    assert "TF_USE_LEGACY_KERAS" not in env
    result = stage(folder, env, "ok", note="first")  # sent while the server may still import: it waits
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("preloaded=True pid=")
    # the stage's environment, and what importing edgecompress.core.backend would have set in it
    assert f"cwd={folder} argv=['stage.py', 'ok'] NOTE=first TF_USE_LEGACY_KERAS=1\n" in result.stdout
    assert result.stderr == "to stderr\n"


@pytest.mark.parametrize("ending, code, last_line", [
    ("user_error", 2, "error: epochs = -1, but at least 1"),
    ("crash", 1, "RuntimeError: a bug"),
    ("exit", 3, "to stderr"),
])
def test_the_child_s_exit_status_and_messages_are_the_stage_s(folder, env, ending, code, last_line):
    result = stage(folder, env, ending)
    assert "preloaded=True" in result.stdout
    assert result.returncode == code
    assert result.stderr.strip().splitlines()[-1] == last_line


def test_a_traceback_starts_at_the_script_as_in_a_fresh_process(folder, env):
    forked, fresh = stage(folder, env, "crash"), stage(folder, {**os.environ, PRELOAD_SOCKET: ""}, "crash")
    assert "preloaded=False" in fresh.stdout
    assert forked.stderr == fresh.stderr
    assert forked.stderr.splitlines()[2] == f'  File "{folder / "stage.py"}", line 22, in <module>'


def test_without_the_server_the_stage_runs_in_its_own_process(folder):
    with preload.server() as gone:
        pass
    assert not os.path.exists(gone[PRELOAD_SOCKET])
    result = stage(folder, gone, "exit")
    assert "preloaded=False" in result.stdout and result.returncode == 3


def test_a_usage_error_is_reported_before_any_hand_off(folder, env):
    result = stage(folder, env, "ok", "note", "extra")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "usage: python stage.py ENDING [NOTE]\n"


def test_terminating_the_stage_terminates_its_forked_child(folder, env):
    (folder / "child.pid").unlink(missing_ok=True)
    client = subprocess.Popen([sys.executable, "stage.py", "sleep"], cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if (folder / "child.pid").exists() and (folder / "child.pid").read_text():
            break
        time.sleep(0.1)
    child = int((folder / "child.pid").read_text())
    assert child != client.pid
    client.send_signal(signal.SIGTERM)
    _, stderr = client.communicate(timeout=60)
    assert client.returncode == 1
    assert stderr.strip().splitlines()[-1] == (f"error: the stage's process ({child}, forked by {PRELOAD_SOCKET}) "
                                               "ended without an exit status: it was killed")
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # gone (the server reaps its children)


def test_a_malformed_request_is_dropped_and_the_server_goes_on(folder, env):
    for junk in (b"", b"no streams attached"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(env[PRELOAD_SOCKET])
            conn.sendall(junk)
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(100) == b""  # closed without a reply
    result = stage(folder, env, "exit")
    assert "preloaded=True" in result.stdout and result.returncode == 3


def test_threads_counts_every_thread_of_the_process():
    before, done = preload.threads(), threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    try:
        assert preload.threads() == before + 1
    finally:
        done.set()
        thread.join()


# a server without TensorFlow (nothing it forks here needs it) that first starts `argv[2]` threads of its own
THREADED_SERVER = """import socket, sys, threading, time
from edgecompress.tools import preload
for _ in range(int(sys.argv[2])):
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
preload.MODULES = ()
preload.serve(socket.socket(fileno=int(sys.argv[1])))
"""


@contextlib.contextmanager
def threaded_server(extra_threads):
    """preload.server(), but the server runs `extra_threads` more threads than its own."""
    with tempfile.TemporaryDirectory(prefix="edgecompress-") as temp:
        path = str(Path(temp) / "preload.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(8)
            proc = subprocess.Popen([sys.executable, "-c", THREADED_SERVER, str(listener.fileno()),
                                     str(extra_threads)], pass_fds=[listener.fileno()], stdin=subprocess.DEVNULL)
        try:
            yield {**os.environ, PRELOAD_SOCKET: path}
        finally:
            proc.terminate()
            proc.wait()


@pytest.mark.parametrize("extra_threads", [0, 1])
def test_a_server_with_a_second_thread_forks_nothing_and_the_stage_runs_in_its_own_process(folder, extra_threads):
    with threaded_server(extra_threads) as env:
        client = subprocess.Popen([sys.executable, "stage.py", "ok"], cwd=folder, env={**env, "NOTE": "t"},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = client.communicate(timeout=120)
    assert client.returncode == 0, stderr
    assert f"cwd={folder} argv=['stage.py', 'ok'] NOTE=t " in stdout
    ran_in = int(re.search(r" pid=(\d+) ", stdout)[1])
    if extra_threads:
        assert ran_in == client.pid  # the stage's own process
        assert stderr == "preload: the server has 2 threads; running this stage in its own process\nto stderr\n"
    else:
        assert ran_in != client.pid  # forked by the server
        assert stderr == "to stderr\n"


def model_files(model_dir: Path) -> dict:
    """{path: bytes} of the SavedModel under model_dir/model and of every model_dir/tflite/*.tflite."""
    return {path.relative_to(model_dir).as_posix(): path.read_bytes()
            for path in [*model_dir.glob("model/**/*"), *model_dir.glob("tflite/*.tflite")] if path.is_file()}


def test_a_forked_train_and_convert_write_the_same_bytes_as_fresh_processes(env, tmp_path):
    fresh = {key: value for key, value in env.items() if key != PRELOAD_SOCKET}

    def stage(project, stage_env, script, *args):
        # -X importtime lists every module the stage's own process imports: tensorflow only where it ran there
        result = subprocess.run([sys.executable, "-X", "importtime", f"stages/{script}.py", *args], cwd=project,
                                env=stage_env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        imported = re.search(r"\|\s+tensorflow$", result.stderr, re.MULTILINE) is not None
        assert imported == (stage_env is fresh), f"{project.name} {script}:\n{result.stderr}"

    written = {}
    for name, stage_env in (("forked", env), ("fresh", fresh)):
        project = tmp_path / name
        shutil.copytree(ROOT / "stages", project / "stages")
        write_params(project, {"train": {"epochs": 1, "width": 0.125},
                               "convert": {"quantizations": ["fp32", "int8"], "representative_samples": 8}})
        if name == "forked":
            stage(project, stage_env, "prepare", "data")
        else:  # the same data for both: what is compared is train's and convert's
            shutil.copytree(tmp_path / "forked" / "data", project / "data")
        stage(project, stage_env, "train", "data", "models/baseline")
        stage(project, stage_env, "convert", "data", "models/baseline")
        written[name] = model_files(project / "models/baseline")
    assert sorted(written["fresh"]) == ["model/keras_metadata.pb", "model/saved_model.pb",
                                        "model/variables/variables.data-00000-of-00001",
                                        "model/variables/variables.index", "tflite/fp32.tflite", "tflite/int8.tflite"]
    for path, data in written["fresh"].items():
        assert written["forked"].get(path) == data, path
