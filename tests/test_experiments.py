"""The README's experiment workflow on tiny params: `dvc exp run -S`, `dvc exp show`, `dvc metrics diff`, the queue."""
import json
import re
import shutil
import time

import pytest
import yaml

from conftest import LITERT_RAM_REPEATS_WITHIN, run

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
    """The README's workflow on a one-stage chain (lowrank; the README's prune example reruns four trainings)."""
    before = json.loads((committed / "metrics/lowrank.json").read_text())["params_count"]
    energy = yaml.safe_load((committed / "params.yaml").read_text())["lowrank"]["energy"]
    run(["dvc", "exp", "run", "-n", "leaner", "-S", "lowrank.energy=0.2"], committed)

    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], committed).stdout)
    params_count = diff["metrics/lowrank.json"]["params_count"]
    assert params_count["old"] == before and params_count["new"] < before
    assert "metrics/baseline.json" not in diff  # the baseline did not rerun

    data = experiment(committed, "leaner")["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["lowrank"]["energy"] == 0.2
    assert data["metrics"]["metrics/lowrank.json"]["data"]["params_count"] == params_count["new"]

    back = run(["dvc", "exp", "run", "-n", "back", "-S", f"lowrank.energy={energy}"], committed).stdout
    assert "Running stage 'compress@lowrank'" not in back  # a value already run: DVC's run cache, no training
    changed = json.loads(run(["dvc", "metrics", "diff", "--json"], committed).stdout).get("metrics/lowrank.json", {})
    # evaluated again: the timings move, LiteRT's RAM by a page or two, nothing else
    assert all(key.endswith(("_ms", "total_s")) or key.endswith("litert_ram_bytes")
               and abs(d["diff"]) <= LITERT_RAM_REPEATS_WITHIN for key, d in changed.items()), changed


def test_an_experiment_adds_a_model_with_one_params_line(committed):
    """`+models.<name>=...` adds an entry: its stages train, convert and evaluate it, nothing else reruns."""
    entry = "{method: lowrank, from: baseline, with: {energy: 0.3}}"
    log = run(["dvc", "exp", "run", "-n", "added", "-S", f"+models.mine={entry}"], committed).stdout
    assert set(re.findall(r"Running stage '([^']+)'", log)) == {"compress@mine", "convert@mine", "evaluate@mine",
                                                                 "report"}
    data = experiment(committed, "added")["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["models"]["mine"]["with"] == {"energy": 0.3}
    baseline = json.loads((committed / "metrics/baseline.json").read_text())["params_count"]
    assert 0 < data["metrics"]["metrics/mine.json"]["data"]["params_count"] < baseline


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


def test_experiments_from_two_machines_meet_in_a_third_through_shared_remotes(committed, tmp_path):
    """Each machine runs its share and pushes it (Git remote + DVC remote); one place pulls and compares them all."""
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    run(["dvc", "remote", "add", "-d", "shared", str(storage)], committed)
    run(COMMIT + ["a DVC remote every machine reaches", ".dvc/config"], committed)
    run(["dvc", "push"], committed)
    run(["git", "clone", "--quiet", "--bare", str(committed), str(origin)], tmp_path)
    machines = {}
    for name in ("machine-a", "machine-b", "laptop"):
        machines[name] = tmp_path / name
        run(["git", "clone", "--quiet", str(origin), str(machines[name])], tmp_path)
        run(["dvc", "pull"], machines[name])
    limits = {"machine-a": 50, "machine-b": 60}
    for name, limit in limits.items():
        run(["dvc", "exp", "run", "-n", f"gzip-{limit}", "-S", f"report.budgets.tiny.max_gzip_kb={limit}"],
            machines[name])
        run(["dvc", "exp", "push", "origin", f"gzip-{limit}"], machines[name])
    laptop = machines["laptop"]
    for limit in limits.values():
        run(["dvc", "exp", "pull", "origin", f"gzip-{limit}"], laptop)
    for limit in limits.values():
        data = experiment(laptop, f"gzip-{limit}")["revs"][0]["data"]
        assert data["params"]["params.yaml"]["data"]["report"]["budgets"]["tiny"]["max_gzip_kb"] == limit
