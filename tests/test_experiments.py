"""The README's experiment workflow on tiny params: `dvc exp run -S`, `dvc exp show`, `dvc metrics diff`, the queue."""
import json
import shutil
import time

import pytest

from conftest import run

COMMIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm"]


@pytest.fixture
def committed(pipeline, tmp_path):
    """A copy of the finished tiny pipeline (with its DVC cache) whose results are committed, as a user's would be."""
    repo = tmp_path / "repo"
    shutil.copytree(pipeline, repo, symlinks=True)
    run(["git", "add", "-A"], repo)
    run(COMMIT + ["results of the tiny run"], repo)
    return repo


def experiment(repo, name) -> dict:
    """The named experiment's entry in `dvc exp show --json`."""
    for baseline in json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout):
        for exp in baseline.get("experiments") or []:
            if exp["name"] == name:
                return exp
    raise AssertionError(f"experiment {name} not in dvc exp show")


def test_exp_run_with_a_param_then_exp_show_and_metrics_diff(committed):
    before = json.loads((committed / "metrics/pruned.json").read_text())["int8"]["sparsity"]
    run(["dvc", "exp", "run", "-n", "sparser", "-S", "prune.final_sparsity=0.5"], committed)

    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], committed).stdout)
    sparsity = diff["metrics/pruned.json"]["int8.sparsity"]
    assert sparsity["old"] == before and abs(sparsity["new"] - 0.5) <= 0.02
    assert "metrics/baseline.json" not in diff  # the baseline did not rerun

    data = experiment(committed, "sparser")["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["prune"]["final_sparsity"] == 0.5
    assert data["metrics"]["metrics/pruned.json"]["data"]["int8"]["sparsity"] == sparsity["new"]


def test_a_queued_experiment_runs_end_to_end(committed):
    run(["dvc", "exp", "run", "--queue", "-n", "two-threads", "-S", "evaluate.threads=2"], committed)
    run(["dvc", "queue", "start", "--jobs", "1"], committed)
    deadline = time.monotonic() + 900
    while True:
        status = run(["dvc", "queue", "status"], committed).stdout
        if not any(state in status for state in ("Queued", "Running")) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert "Success" in status, status

    exp = experiment(committed, "two-threads")
    assert exp["executor"]["state"] == "success"
    metrics = exp["revs"][0]["data"]["metrics"]
    for name in ("metrics/baseline.json", "metrics/pcqat.json"):
        assert metrics[name]["data"]["protocol"]["threads"] == 2
    assert json.loads((committed / "metrics/baseline.json").read_text())["protocol"]["threads"] == 1  # workspace untouched
