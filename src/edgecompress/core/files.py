"""Atomic writes (outputs appear under their final name only once complete), and native output captured."""
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from edgecompress.core.errors import UserError


@contextlib.contextmanager
def atomic_path(path, is_dir: bool = False):
    """Yield a temporary sibling path to write to; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp = tmp_dir / path.name
    if is_dir:
        tmp.mkdir()
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path):
    """Parse a JSON file a stage needs; a missing one is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing; run the stage that writes it first (dvc repro)")
    return json.loads(path.read_text())


@contextlib.contextmanager
def captured_stderr(lines: list):
    """Collect into `lines` what this process writes to file descriptor 2 meanwhile, native code's too (TensorFlow's
    start-up, TFLM's MicroPrintf), one string per line with its line end."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines.extend(captured.read().decode(errors="replace").splitlines(keepends=True))
