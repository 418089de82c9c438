"""The budget-driven search: its space checked against params.yaml, trials as DVC experiments on the tiny pipeline, a
resumed study that trains nothing twice, and workers in several clones sharing one PostgreSQL study."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import BIN, ROOT, run, set_param
from edgecompress.core.errors import UserError
from edgecompress.search import results, space, study
from test_experiments import COMMIT
from test_remote_device import free_port

SEARCH = [sys.executable, "-m", "edgecompress.search"]
# one param of a one-stage model: a trial trains compress@lowrank alone
LOWRANK = {"models": ["lowrank"], "params": {"lowrank.energy": [0.2, 0.6, 0.1]}}


def params_with(space_of_tiny: dict) -> dict:
    """The project's params with one search space shared by every budget."""
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    values["search"]["spaces"] = {"all": space_of_tiny}
    return values


@pytest.mark.parametrize("args, spec, words", [
    (["nope"], LOWRANK, "budget 'nope' is not allowed; expected one of report.budgets: tiny, mcu, fast, accurate"),
    (["tiny"], {"models": ["lowrank"], "params": {"lowrank.nothing": [0.2, 0.6]}},
     "lowrank.nothing is not a param of params.yaml"),
    (["tiny"], {"models": ["lowrank"], "params": {"lowrank.energy": [0.6, 0.2]}},
     "lowrank.energy = [0.6, 0.2] is not allowed; expected a range [low, high] with low < high"),
    (["tiny"], {"models": ["lowrank"], "params": {"lowrank.energy": {"choices": []}}},
     "lowrank.energy = {'choices': []} is not allowed"),
    (["tiny"], {"models": ["lowrank"], "params": {"models.pruned.with.clusters": [2, 8]}},
     "models.pruned.with.clusters is not allowed; 'clusters' is not a setting of prune"),
    (["tiny"], {"models": ["nothing"], "params": {"lowrank.energy": [0.2, 0.6]}},
     "search.spaces.all.models = ['nothing'] is not allowed"),
    (["tiny"], {"models": ["lowrank"], "params": None}, "search.spaces.all.params = None is not allowed"),
    (["tiny"], {"models": ["mine"], "params": {"models.mine": [1, 2]}},
     "models.mine = [1, 2] is not allowed; expected {choices: [...]} of whole model entries"),
    (["tiny"], {"models": ["mine"], "params": {"models.mine": {"choices": [{"method": "qat", "from": "nowhere"}]}}},
     "models.mine.from = 'nowhere'"),
    (["tiny"], {"models": ["mine"], "params": {"models.mine": {"choices": [{"method": "downscal", "from": "baseline",
                                                                           "teacher": "baseline"}]}}},
     "models.mine's choices use downscal, which is not a method; methods: "),
    (["fast", "--jobs", "2"], LOWRANK, "--jobs 2 is not allowed for fast, which weighs latency"),
    (["tiny", "--trials", "0"], LOWRANK, "--trials 0 --jobs 1 is not allowed"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, spec, words):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_with(spec), sort_keys=False))
    result = run(SEARCH + args, tmp_path, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_an_unreachable_storage_is_one_line_without_its_password():
    with pytest.raises(UserError) as refused:
        study.storage("postgresql://me:secret@127.0.0.1:1/study")
    message = str(refused.value)
    assert message.startswith("search: the storage postgresql://127.0.0.1:1/study cannot be used (")
    assert "\n" not in message and "secret" not in message


def test_a_range_with_a_step_and_a_whole_model_entry_among_choices():
    ranged = space.distribution("prune.final_sparsity", [0.5, 0.9, 0.05])
    assert (ranged.low, ranged.high, ranged.step) == (0.5, 0.9, 0.05)
    assert isinstance(space.distribution("cluster.clusters", [8, 32, 8]), optuna.distributions.IntDistribution)
    entry = {"method": "prune", "from": "baseline", "with": {"final_sparsity": 0.5}}
    choices = space.distribution("models.mine", {"choices": [entry, {"method": "qat", "from": "baseline"}]})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [space.sample(study.ask(), {"models.mine": choices, "prune.final_sparsity": ranged}) for _ in range(8)]
    assert entry in [d["models.mine"] for d in drawn]  # read back as the entry itself, for `dvc exp run -S`
    assert all(round(d["prune.final_sparsity"] / 0.05, 6).is_integer() for d in drawn)
    with pytest.raises(UserError, match=r"\[0.5, 0.9, 0.5\] is not allowed"):
        space.distribution("prune.final_sparsity", [0.5, 0.9, 0.5])


def test_a_trial_starts_from_the_space_models_and_from_what_an_added_entry_comes_from():
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    values["search"]["spaces"]["all"] = {"models": ["mine", "qat"], "params": {"models.mine": {"choices": [
        {"method": "downscale", "from": "block_pruned", "teacher": "baseline"}, {"method": "prune", "from": "lowrank"}]}}}
    declared = space.load(values, "accurate")
    assert space.standing(values, declared) == ["qat", "block_pruned", "baseline", "lowrank"]


def test_the_committed_values_start_a_study_only_where_its_space_holds_them():
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    distributions = {"prune.final_sparsity": space.distribution("", [0.5, 0.9, 0.05]),  # 0.8: on the grid
                     "qat.epochs": space.distribution("", [1, 5, 2]),  # 2: between steps
                     "models.pruned.with.epochs": space.distribution("", {"choices": [4, 8]})}  # prune.epochs 8
    assert space.current(values, distributions) == {"prune.final_sparsity": 0.8, "models.pruned.with.epochs": "8"}


def test_a_study_made_for_another_space_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    study.study(url, "tiny", 0, 1, "{space: a}", {})
    with pytest.raises(UserError, match="the study 'tiny' in .* was made for another search space"):
        study.study(url, "tiny", 0, 1, "{space: b}", {})
    assert len(study.study(url, "tiny", 0, 1, "{space: a}", {}).trials) == 1  # resumed: the queued first trial


def test_the_pick_is_the_best_preference_among_the_trials_that_fit():
    def trial(number, lost, gzip, fits):
        return {"number": number, "experiment": f"tiny-{number}", "fits": fits, "accuracy_lost_points": lost,
                "gzip_kb": gzip, "latency_p50_ms": 0.01, "accuracy": 1 - lost / 100}
    records = [trial(0, 0.0, 300, False), trial(1, 2.0, 60, True), trial(2, 1.0, 90, True), trial(3, 1.0, 80, True)]
    assert results.best(records, "accuracy")["number"] == 3  # as accurate as trial 2, and smaller
    assert results.best(records, "gzip")["number"] == 1
    assert results.best(records[:1], "accuracy") is None


def test_a_whole_model_entry_shows_in_the_trials_table_by_what_differs():
    entries = [{"method": "downscale", "from": source, "teacher": "baseline"} for source in ("kd", "blocks")]
    trials = [{"number": n, "values": {"models.lowres": entry, "downscale.input_size": 8 + 4 * n}, "state": "FAIL"}
              for n, entry in enumerate(entries)]
    result = {"budget": "fast", "trials": trials, "models": ["lowres"], "limits": {"max_loss_points": 1.0},
              "prefer": "latency", "pick": None, "importance": {}}
    table = results.section(result).table
    assert [row[:3] for row in table] == [["0", "from: kd", "8"], ["1", "from: blocks", "12"]]


def committed_copy(pipeline, repo: Path, search_space: dict) -> Path:
    """A committed copy of the tiny pipeline at `repo` whose `tiny` budget searches `search_space`."""
    shutil.copytree(pipeline, repo, symlinks=True)
    values = yaml.safe_load((repo / "params.yaml").read_text())
    values["search"]["spaces"] = {"tiny": search_space}
    (repo / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    run(["git", "add", "-A"], repo)
    run(COMMIT + ["results of the tiny run, and a search space"], repo)
    return repo


@pytest.fixture
def searched(pipeline, tmp_path):
    """A committed copy of the tiny pipeline whose `tiny` budget searches lowrank.energy."""
    return committed_copy(pipeline, tmp_path / "repo", LOWRANK)


def test_a_trial_adds_a_whole_model_entry_as_its_experiment_never_to_the_workspace(pipeline, tmp_path):
    entries = [{"method": "lowrank", "from": "baseline", "with": {"energy": energy}} for energy in (0.3, 0.5)]
    repo = committed_copy(pipeline, tmp_path / "repo", {"models": ["mine"], "params": {"models.mine": {
        "choices": entries}}})
    run(SEARCH + ["tiny", "--trials", "1"], repo)
    trial = json.loads((repo / "search/tiny.json").read_text())["trials"][0]
    commit = experiments(repo)["tiny-0"]
    params = yaml.safe_load(run(["git", "show", f"{commit}:params.yaml"], repo).stdout)
    assert params["models"]["mine"] == trial["values"]["models.mine"] and trial["model"] == "mine"
    metrics = json.loads(run(["git", "show", f"{commit}:metrics/mine.json"], repo).stdout)
    assert metrics[trial["quantization"]]["accuracy"] == trial["accuracy"]
    assert "mine" not in yaml.safe_load((repo / "params.yaml").read_text())["models"]


def experiments(repo) -> dict:
    """{experiment name: its commit} of the repository's HEAD."""
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    refs = run(["git", "for-each-ref", "--format=%(refname) %(objectname)", f"refs/exps/{head[:2]}/{head[2:]}/"],
               repo).stdout.split("\n")
    return {ref.rsplit("/", 1)[1].split()[0]: ref.split()[1] for ref in refs if ref}


def test_a_workspace_behind_its_params_is_refused_in_one_line(searched):
    """Every trial starts from the committed outputs: stale ones would be trained again in each."""
    set_param(searched, "lowrank.energy", 0.3)
    result = run(SEARCH + ["tiny"], searched, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "compress@lowrank" in lines[0] and "not up to date in the workspace" in lines[0] and "make run" in lines[0]
    assert sorted(p.name for p in (searched / "search").iterdir()) == ["README.md"]


def test_three_trials_are_three_experiments_and_a_rerun_adds_only_the_missing(searched):
    run(SEARCH + ["tiny", "--trials", "3"], searched)
    first = experiments(searched)
    assert set(first) == {"tiny-0", "tiny-1", "tiny-2"}
    result = json.loads((searched / "search/tiny.json").read_text())
    assert [t["state"] for t in result["trials"]] == ["COMPLETE"] * 3
    for trial in result["trials"]:
        params = yaml.safe_load(run(["git", "show", f"{first[trial['experiment']]}:params.yaml"], searched).stdout)
        metrics = json.loads(run(["git", "show", f"{first[trial['experiment']]}:metrics/lowrank.json"],
                                 searched).stdout)
        assert params["lowrank"]["energy"] == trial["values"]["lowrank.energy"]
        assert trial["model"] == "lowrank"  # the searched model's file, never the reference's
        assert metrics[trial["quantization"]]["accuracy"] == trial["accuracy"]
        assert round(trial["gzip_kb"] * 1000) == metrics[trial["quantization"]]["gzip_bytes"]
    assert "## Search: tiny" in (searched / "search/tiny.md").read_text()

    again = run(SEARCH + ["tiny", "--trials", "5"], searched)
    now = experiments(searched)
    assert set(now) == set(first) | {"tiny-3", "tiny-4"}
    assert all(now[name] == commit for name, commit in first.items())  # the first three untouched
    log = (searched / "search/tiny.log").read_text()
    assert len(re.findall(r"^\$ dvc .*exp run", log, re.M)) == 5, log  # one `dvc exp run` per trial, ever
    assert len(json.loads((searched / "search/tiny.json").read_text())["trials"]) == 5
    assert "dvc exp apply tiny-" in again.stdout
    assert json.loads(run(["dvc", "status", "--json"], searched).stdout).keys() == {"report"}  # trials ran elsewhere
    run(["dvc", "repro", "report"], searched)
    section = (searched / "report/report.md").read_text().split("## Search: tiny\n", 1)[1]
    pick = json.loads((searched / "search/tiny.json").read_text())["pick"]
    assert f"`dvc exp apply {pick['experiment']}` brings it into the workspace" in section
    assert 'alt="search_tiny"' in (searched / "report/report.html").read_text()


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL not found: install Debian's postgresql (.ci/run does)"
    return Path(found[-1]).parent


@pytest.fixture
def postgres():
    """A real PostgreSQL server on a free port of 127.0.0.1 (as the postgres user when run as root, in a folder of
    its own outside pytest's private ones); yields its URL."""
    folder = Path(tempfile.mkdtemp(prefix="edgecompress-postgres-"))
    data, port, bin_dir = folder / "data", free_port(), postgres_bin()
    as_user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    subprocess.run(as_user + [bin_dir / "initdb", "-D", data, "-U", "search", "--auth=trust"], check=True,
                   capture_output=True)
    subprocess.run(as_user + [bin_dir / "pg_ctl", "-D", data, "-l", folder / "log", "-w", "-o",
                              f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)
    yield f"postgresql://search@127.0.0.1:{port}/postgres"
    subprocess.run(as_user + [bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_workers_in_two_clones_share_one_study_and_a_third_clone_pulls_the_pick(searched, postgres, tmp_path):
    """The README's several-machine search: one Git remote, one DVC remote, one PostgreSQL study."""
    origin, store = tmp_path / "origin.git", tmp_path / "dvc-remote"
    run(["git", "init", "-q", "--bare", origin], tmp_path)
    run(["dvc", "remote", "add", "-d", "shared", store], searched)
    run(COMMIT + ["shared DVC remote", ".dvc/config"], searched)
    run(["git", "remote", "add", "origin", origin], searched)
    run(["git", "push", "-q", "origin", "HEAD:main"], searched)
    run(["dvc", "push"], searched)
    clones = []
    for name in ("a", "b", "c"):
        run(["git", "clone", "-q", "-b", "main", origin, name], tmp_path)
        clones.append(tmp_path / name)
    workers = []
    for clone in clones[:2]:
        run(["dvc", "pull"], clone)
        workers.append(subprocess.Popen(SEARCH + ["tiny", "--trials", "4", "--storage", postgres], cwd=clone,
                                        env=dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for worker in workers:
        output, _ = worker.communicate(timeout=1800)
        assert worker.returncode == 0, output
    made = [set(experiments(clone)) for clone in clones[:2]]
    assert made[0] and made[1]  # both worked on the one study
    study = optuna.load_study(study_name="tiny", storage=postgres)
    numbers = {f"tiny-{t.number}" for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert numbers == made[0] | made[1] and len(numbers) >= 4
    for clone in clones[:2]:
        run(["dvc", "exp", "push", "origin", *experiments(clone)], clone)

    pick = json.loads((clones[1] / "search/tiny.json").read_text())["pick"]
    third = clones[2]
    run(["dvc", "exp", "pull", "origin", pick["experiment"]], third)
    run(["dvc", "exp", "apply", pick["experiment"]], third)
    metrics = json.loads((third / "metrics/lowrank.json").read_text())
    assert metrics[pick["quantization"]]["accuracy"] == pick["accuracy"]
    assert yaml.safe_load((third / "params.yaml").read_text())["lowrank"]["energy"] == pick["values"][
        "lowrank.energy"]
    assert (third / "models/lowrank/tflite" / f"{pick['quantization']}.tflite").is_file()  # its outputs, from DVC
