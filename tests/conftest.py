"""Shared fixtures: tiny params, a throwaway copy of the repo, and one end-to-end run of the pipeline in it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from edgecompress import data, methods
from edgecompress.data import sources
from edgecompress.measure import runner

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's python and dvc, whatever PATH the caller has
LITERT_RAM_REPEATS_WITHIN = 4 * 4096  # bytes: the figure moves by a page or two between runs (README)
TINY = {
    "train": {"width": 0.125, "epochs": 2},
    **{method: {"epochs": 1} for method in methods.RULES},  # every compression method fine-tunes for one epoch
    "distill": {"epochs": 1},
    "convert": {"representative_samples": 16},
    "evaluate": {"warmup": 2},
}


def merged(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def write_params(repo: Path, override: dict = None) -> dict:
    """Write the repo's params.yaml with TINY and `override` applied to the project's defaults."""
    values = merged(merged(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY), override or {})
    (repo / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return values


def set_param(repo, dotted_key, value):
    """Change one param (a dotted key) in the repo's params.yaml; return the original text to restore."""
    path = repo / "params.yaml"
    original = path.read_text()
    values = yaml.safe_load(original)
    *parents, key = dotted_key.split(".")
    section = values
    for parent in parents:
        section = section[parent]
    section[key] = value
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return original


def run(args, cwd, check=True):
    """Run a command with the venv first on PATH; return the CompletedProcess (text output)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", CI="true")
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def on_disk(folder: Path, arrays: dict) -> dict:
    """The splits {name: (x, y)} written as prepared splits (shards) under `folder`, opened."""
    for name, (x, y) in arrays.items():
        data.write_split(folder / name, x, y, shard_bytes=2**20)
    return {name: data.open_split(folder / name) for name in arrays}


def read_split(folder: Path) -> tuple:
    """(x, y) arrays of a prepared split, in the order written: for assertions on tiny data."""
    images, labels = zip(*runner.TestSplit(folder))
    return np.stack(images), np.array(labels)


def write_digit_folder(root: Path, per_class=None, classes=range(10), start=0, prefix="digit_",
                       suffixes=(".png", ".tif")) -> None:
    """The built-in digits as a class-per-folder tree of real image files, alternating PNG and TIFF."""
    images, labels, _ = sources.load_digits()
    for digit in classes:
        folder = root / f"{prefix}{digit}"
        folder.mkdir(parents=True, exist_ok=True)
        picks = images[labels == digit][start:None if per_class is None else start + per_class]
        for i, image in enumerate(picks):
            Image.fromarray(image).save(folder / f"{i:04d}{suffixes[i % len(suffixes)]}")


def copy_repo(dest: Path) -> Path:
    """Copy the working tree's tracked and unignored files (no outputs or results, no venv) into a fresh git repo."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        results = rel.startswith(("metrics/", "plots/", "report/", "search/")) and rel != "search/README.md"
        if src.is_file() and not results and rel != "dvc.lock":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for args in (["git", "init", "-q"], ["git", "add", "-A"],
                 ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        run(args, dest)
    return dest


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into the node ids it schedules by
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`make test` runs two workers) every test on the one tiny pipeline goes to one worker,
    which builds the pipeline once; the other worker takes the rest."""
    for item in items:
        if "pipeline" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("pipeline"))


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """A copy of the repo on tiny params after one full run of `make run`'s lanes (edgecompress.tools.lanes), reading the
    digits from a folder of image files.

    The folder lies outside the repo (an absolute data.path), as a user's dataset would, so that queued
    experiments, which run in a temporary clone, read it too.
    """
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    images = tmp_path_factory.mktemp("digits")
    write_digit_folder(images, prefix="")
    write_params(repo, {"data": {"source": "folder", "path": str(images)}})  # test_path left at the placeholder
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "tiny params"], repo)
    run([sys.executable, "-m", "edgecompress.tools.lanes"], repo)
    return repo
