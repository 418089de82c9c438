"""One trial as one DVC experiment: `dvc exp run --temp` with the trial's values as `-S` overrides and the evaluate
stages of the searched models as targets, so stages that no value changed come from DVC's cache; its measurements
read back from the experiment's commit."""
import json
import subprocess

import yaml

from edgecompress.core.errors import UserError
from edgecompress.core.params import UPSTREAM
from edgecompress.measure.compare import REFERENCE
from edgecompress.search.space import as_text, at

METRICS = "metrics/{}.json"


def evaluate_stage(model: str) -> str:
    """The stage that measures `model` (dvc.yaml: evaluate_trained for the training stages' models)."""
    return f"evaluate_trained@{model}" if model in UPSTREAM else f"evaluate@{model}"


def _git(repo, *args, check=True) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and result.returncode:
        raise UserError(f"search: git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout if result.returncode == 0 else ""


def experiment_ref(repo, name: str) -> str:
    """The Git ref of the experiment `name` made from the repository's HEAD, or '' if there is none."""
    head = _git(repo, "rev-parse", "HEAD").strip()
    prefix = f"refs/exps/{head[:2]}/{head[2:]}/"
    return next((ref for ref in _git(repo, "for-each-ref", "--format=%(refname)", prefix).split()
                 if ref == prefix + name), "")


def _params_of(repo, ref: str) -> dict:
    return yaml.safe_load(_git(repo, "show", f"{ref}:params.yaml"))


def holds(repo, ref: str, values: dict) -> bool:
    """Whether the experiment at `ref` ran with exactly the trial's `values` ({param path: value})."""
    params = _params_of(repo, ref)
    try:
        return all(as_text(at(params, path)) == as_text(value) for path, value in values.items())
    except KeyError:
        return False


def run(repo, name: str, values: dict, models: list, log) -> str:
    """The ref of experiment `name` with the trial's `values`, run now unless an earlier run of this search made it
    (a resumed search trains nothing twice); DVC's output goes to `log` (a file)."""
    ref = experiment_ref(repo, name)
    if ref and holds(repo, ref, values):
        return ref
    if ref:  # a study started afresh reuses the name: the old experiment gives way
        subprocess.run(["dvc", "exp", "remove", name], cwd=repo, capture_output=True, check=False)
    overrides = [arg for path, value in values.items() for arg in ("-S", f"++{path}={as_text(value)}")]
    targets = [evaluate_stage(m) for m in dict.fromkeys([REFERENCE[0], *models])]
    command = ["dvc", "--wait-for-lock", "exp", "run", "--temp", "-n", name, *overrides, *targets]
    print(f"$ {' '.join(command)}", file=log, flush=True)
    if subprocess.run(command, cwd=repo, stdout=log, stderr=subprocess.STDOUT).returncode:
        raise RuntimeError(f"dvc exp run of trial {name} failed (its output: {log.name})")
    ref = experiment_ref(repo, name)
    if not ref:
        raise RuntimeError(f"dvc exp run of trial {name} made no experiment (its output: {log.name})")
    return ref


def measurements(repo, ref: str, models: list) -> dict:
    """{model: its metrics} of the reference and `models` in the experiment's commit, the reference first."""
    return {model: json.loads(_git(repo, "show", f"{ref}:{METRICS.format(model)}"))
            for model in dict.fromkeys([REFERENCE[0], *models])}
