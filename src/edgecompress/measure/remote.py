"""Benchmark on a device over SSH with the system OpenSSH client: copy the runner, the models and the test split
into a temporary folder there, run, bring back one JSON, remove the folder.

The destination is what the user types for `ssh` (user@host or a Host alias), so keys, ports and jump hosts
stay in their own ~/.ssh/config; nothing secret passes through params.
"""
import json
import shlex
import subprocess
import tarfile
import tempfile
from pathlib import Path

from edgecompress.measure import runner
from edgecompress.core.errors import UserError


class Device:
    def __init__(self, destination: str, python: str, connect_timeout: int, run_timeout: int, ssh_options=()):
        self.destination, self.python, self.run_timeout = destination, python, run_timeout
        self.ssh = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}", *ssh_options,
                    destination]

    def fail(self, fault: str):
        raise UserError(f"evaluate.device {self.destination}: {fault}")

    def call(self, command: str, what: str, stdin=subprocess.DEVNULL, hint: str = "") -> str:
        """Run a shell command on the device, reading the open file `stdin`; its stdout, or UserError naming the
        host and the fault."""
        try:
            result = subprocess.run(self.ssh + [command], stdin=stdin, capture_output=True,
                                    timeout=self.run_timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"could not {what} within {self.run_timeout} s (evaluate.run_timeout)")
        stderr = result.stderr.decode(errors="replace").strip().splitlines()
        last = stderr[-1] if stderr else f"exit status {result.returncode}"
        if result.returncode == 127:
            self.fail(f"cannot {what}, a command is missing on the device: {last}{hint}")
        if result.returncode != 0:  # 255 is ssh's own failure (unreachable, refused, key not accepted)
            self.fail(f"cannot {what}: {last}")
        return result.stdout.decode()

    def run_folder(self, model_dir, test_dir, threads: int, warmup: int, runs: int, input_range=(0, 1),
                   reference=None, reference_range=(0, 1)) -> dict:
        """runner.run_folder, run on the device by the same runner file."""
        unpack = ('d=$(mktemp -d "${TMPDIR:-/tmp}/edgecompress.XXXXXX") && '
                  '{ tar -x -C "$d" || { rm -rf "$d"; exit 1; }; } && echo "$d"')
        with tempfile.TemporaryFile() as tar:
            bundle(model_dir, test_dir, tar, reference)
            tar.seek(0)
            workdir = self.call(unpack, "copy the models to the device", stdin=tar).strip()
        folder = shlex.quote(workdir)
        try:
            out = self.call(f"cd {folder} && {shlex.quote(self.python)} runner.py models test result.json "
                            f"--threads {threads} --warmup {warmup} --runs {runs} "
                            f"--input-range {float(input_range[0])} {float(input_range[1])} "
                            + (f"--reference reference.tflite --reference-range {float(reference_range[0])} "
                               f"{float(reference_range[1])} " if reference else "") + "&& cat result.json",
                            "run the benchmark", hint=f" (evaluate.python is {self.python!r}; it needs numpy and "
                                                       "ai-edge-litert or tflite-runtime)")
        finally:  # best effort: a failure here must not hide the one above
            subprocess.run(self.ssh + [f"rm -rf {folder}"], capture_output=True, timeout=self.run_timeout)
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            self.fail(f"the runner printed no result: {out[-200:]!r}")


def bundle(model_dir, test_dir, out, reference=None) -> None:
    """Write to the open file `out` a tar of runner.py, models/*.tflite, the test split as test/ and the reference
    .tflite, if any: what the device needs, sent over ssh's stdin."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(runner.__file__, arcname="runner.py")
        if reference:
            tar.add(reference, arcname="reference.tflite")
        for path in sorted(Path(model_dir).glob("*.tflite")):
            tar.add(path, arcname=f"models/{path.name}")
        tar.add(test_dir, arcname="test")
