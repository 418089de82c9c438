"""A server that imports TensorFlow once and forks each TensorFlow stage of `make run` from it.

DVC still starts every stage as a process of its own and caches it as before; the stage's script hands its
command line, working directory, environment and standard streams to the server, which forks a child that runs
the script and reports its exit status back. The child skips TensorFlow's import (about 4 s of CPU), and the
server has created no TensorFlow context or thread pool before the fork, so the child trains and converts
exactly as a fresh process does. A fork copies only the forking thread, and a lock that another thread held stays
held in the child: a server with a second thread forks nothing, and the stage runs in its own process. Linux
without an NVIDIA GPU only: device discovery, part of the import, starts CUDA, which does not survive a fork.
Without the server (a plain `dvc repro`) every stage runs as it is.
"""
import atexit
import ctypes
import glob
import importlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import traceback
import types
from contextlib import contextmanager
from pathlib import Path

from edgecompress.core.names import PRELOAD_SOCKET

MODULES = ("edgecompress.core.backend", "tensorflow_model_optimization")  # TensorFlow, tf_keras, TFMOT as stages do
STREAMS = (0, 1, 2)
LENGTH = struct.Struct("!I")


def supported() -> bool:
    return sys.platform == "linux" and not glob.glob("/dev/nvidia[0-9]*")


def threads() -> int:
    """The threads of this process, C++ ones that Python's threading module never sees included (Linux)."""
    return len(os.listdir("/proc/self/task"))


def _stop_blas_threads() -> None:
    """Join the worker threads of every OpenBLAS loaded (numpy's, scipy's), as its own fork handler does at a fork.

    Each starts one fewer worker than there are cores as it loads, and starts them again on its next call (the
    server makes none). A library without the function keeps its threads, and the server then forks nothing.
    """
    with open("/proc/self/maps") as maps:  # address, permissions, offset, device, inode[, path]
        paths = {fields[5].strip() for fields in map(lambda line: line.split(maxsplit=5), maps)
                 if len(fields) == 6 and "openblas" in os.path.basename(fields[5])}
    for path in paths:
        try:
            library = ctypes.CDLL(path, mode=os.RTLD_NOLOAD)  # only one already loaded
        except OSError:
            continue
        shutdown = getattr(library, "blas_thread_shutdown_", None)
        if shutdown is not None:
            shutdown()


@contextmanager
def server():
    """Start the server and yield the environment that hands TensorFlow stages to it; stop it on leaving.

    The socket listens before the server has imported anything, so a stage that starts early waits for it
    instead of falling back to a fresh process.
    """
    with tempfile.TemporaryDirectory(prefix="edgecompress-") as folder:
        path = str(Path(folder) / "preload.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(64)
            proc = subprocess.Popen([sys.executable, "-m", "edgecompress.tools.preload", str(listener.fileno())],
                                    pass_fds=[listener.fileno()], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:  # only the server holds the socket now: if it dies, a waiting stage is refused and runs as it is
            yield {**os.environ, PRELOAD_SOCKET: path}
        finally:
            proc.terminate()
            proc.wait()


def serve(listener: socket.socket) -> None:
    """Import MODULES, then fork a child for every stage that connects, until the parent process ends."""
    before = dict(os.environ)
    for module in MODULES:
        importlib.import_module(module)
    preset = {key: value for key, value in os.environ.items() if before.get(key) != value}  # what the imports set
    _stop_blas_threads()  # the imports' only threads: the server is left with its own
    parent = os.getppid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    listener.settimeout(1.0)
    while os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(10.0)  # a request follows its connection at once
        with conn:
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError):
                continue
            try:
                count = threads()
                if count != 1:  # refused: the stage runs in its own process, as without a server
                    conn.sendall(f"refused the server has {count} threads\n".encode())
                elif os.fork() == 0:
                    try:
                        listener.close()
                        _run_child(conn, request, fds, preset)
                    finally:
                        os._exit(1)  # the child never returns to the server's loop
            except OSError:  # the stage is gone, or no fork: it runs in its own process
                pass
            finally:
                for fd in fds:
                    os.close(fd)


def _receive(conn) -> tuple:
    """(the request, the client's stream descriptors); a malformed request closes what it brought."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, len(STREAMS))
    try:
        if len(fds) != len(STREAMS) or len(data) < LENGTH.size:
            raise ValueError("a request without its streams")
        size = LENGTH.unpack_from(data)[0]
        data = data[LENGTH.size:]
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ValueError("a truncated request")
            data += chunk
        return json.loads(data), fds
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise


def _run_child(conn, request: dict, fds: list, preset: dict) -> None:
    """In the forked child: become the stage's process, run its script, send its exit status, and exit. `preset`:
    the variables the preloaded modules set in the environment, as they would in the stage's own import."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in zip(STREAMS, fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)  # line-buffered on a terminal, like a fresh process
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update({key: value for key, value in request["env"].items() if key != PRELOAD_SOCKET}, **preset)
    sys.argv = request["argv"]
    script = os.path.abspath(sys.argv[0])
    sys.path[0] = os.path.dirname(script)
    conn.sendall(f"pid {os.getpid()}\n".encode())
    code = 1
    try:
        _run_script(script)
        code = 0
    except SystemExit as done:
        code = _exit_code(done.code)
    except BaseException as err:  # what the interpreter prints for an uncaught exception, from the script down
        frames = err.__traceback__
        while frames and frames.tb_frame.f_code.co_filename != script:
            frames = frames.tb_next
        traceback.print_exception(type(err), err, frames or err.__traceback__)
        code = 128 + signal.SIGINT if isinstance(err, KeyboardInterrupt) else 1
    try:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            stream.flush()
        conn.sendall(f"exit {code}\n".encode())
    finally:
        os._exit(code)


def _run_script(script: str) -> None:
    """Run the file as `python script` would: as module __main__, its path absolute, sys.argv as it is."""
    main = types.ModuleType("__main__")
    main.__file__ = script
    sys.modules["__main__"] = main
    exec(compile(Path(script).read_bytes(), script, "exec"), main.__dict__)


def _exit_code(code) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def hand_off() -> None:
    """When a server is named in the environment, run this process's script there and exit with its status;
    otherwise (no server, or it is gone) return, and the script runs here."""
    path = os.environ.get(PRELOAD_SOCKET)
    if not path or not Path(sys.argv[0]).is_file():  # lanes names a server only where it is supported()
        return
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        payload = json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [LENGTH.pack(len(payload)), payload], list(STREAMS))
        reply = conn.makefile("r")
        started = reply.readline()
    except OSError:
        started = ""
    if not started.startswith("pid "):
        if started.startswith("refused "):
            print(f"preload: {started.removeprefix('refused ').strip()}; running this stage in its own process",
                  file=sys.stderr, flush=True)
        conn.close()
        return
    child = int(started.split()[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C at the terminal reaches the child itself
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _: _forward(child, number))
    finished = reply.readline()
    if not finished.startswith("exit "):
        print(f"error: the stage's process ({child}, forked by {PRELOAD_SOCKET}) ended without an exit status: it was "
              "killed", file=sys.stderr)
        sys.exit(1)
    sys.exit(int(finished.split()[1]))


def _forward(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
