"""One trial as one DVC experiment: `dvc exp run --temp` with the trial's values as `-S` overrides and the evaluate
stages of the searched models as targets, so stages that no value changed come from DVC's cache; its measurements
read back from the experiment's commit."""
import json
import subprocess
import sys

import yaml

from edgecompress.core.errors import UserError
from edgecompress.core.params import UPSTREAM
from edgecompress.measure.compare import REFERENCE
from edgecompress.search.space import as_text, at

METRICS = "metrics/{}.json"
DVC = [sys.executable, "-m", "dvc"]


def targets(models: list) -> list:
    """The stages a trial reproduces: those that measure the reference and `models` (dvc.yaml: evaluate_trained for
    the training stages' models)."""
    return [f"evaluate_trained@{m}" if m in UPSTREAM else f"evaluate@{m}"
            for m in dict.fromkeys([REFERENCE[0], *models])]


def stale(models: list) -> list:
    """The stages up to the trials' targets that `dvc status` finds out of date in the workspace: every trial, which
    starts from the committed outputs, would run them again."""
    result = subprocess.run([*DVC, "status", "--json", "--with-deps", *targets(models)], capture_output=True,
                            text=True)
    if result.returncode:
        raise UserError(f"search: dvc status failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return sorted(json.loads(result.stdout))


def _git(*args) -> str:
    """git's output in the working directory; a failure fails the trial (RuntimeError), not the search."""
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def experiment_ref(name: str) -> str:
    """The Git ref of the experiment `name` made from the repository's HEAD, or '' if there is none."""
    head = _git("rev-parse", "HEAD").strip()
    ref = f"refs/exps/{head[:2]}/{head[2:]}/{name}"  # where DVC keeps an experiment of that commit
    return ref if _git("for-each-ref", "--format=%(refname)", ref).strip() == ref else ""


def holds(ref: str, values: dict) -> bool:
    """Whether the experiment at `ref` ran with exactly the trial's `values` ({param path: value})."""
    params = yaml.safe_load(_git("show", f"{ref}:params.yaml"))
    try:
        return all(as_text(at(params, path)) == as_text(value) for path, value in values.items())
    except KeyError:
        return False


def run(name: str, values: dict, models: list, log) -> str:
    """The ref of experiment `name` with the trial's `values`: one already made with them (a trial whose worker died
    after its experiment, retried) is read back, not run again; DVC's output goes to `log` (a file)."""
    ref = experiment_ref(name)
    if ref and holds(ref, values):
        return ref
    if ref:  # a study started afresh reuses the name: the old experiment gives way
        subprocess.run([*DVC, "exp", "remove", name], capture_output=True, check=False)
    overrides = [arg for path, value in values.items() for arg in ("-S", f"++{path}={as_text(value)}")]
    command = [*DVC, "--wait-for-lock", "exp", "run", "--temp", "-n", name, *overrides, *targets(models)]
    print(f"$ dvc {' '.join(command[3:])}", file=log, flush=True)
    if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode:
        raise RuntimeError(f"dvc exp run of trial {name} failed (its output: {log.name})")
    ref = experiment_ref(name)
    if not ref:
        raise RuntimeError(f"dvc exp run of trial {name} made no experiment (its output: {log.name})")
    return ref


def measurements(ref: str, models: list) -> dict:
    """{model: its metrics} of the reference and `models` in the experiment's commit, the reference first."""
    return {model: json.loads(_git("show", f"{ref}:{METRICS.format(model)}"))
            for model in dict.fromkeys([REFERENCE[0], *models])}
