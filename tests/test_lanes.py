"""edgecompress.tools.lanes: which stages run together and how, on real tiny DVC projects that train nothing."""
import subprocess
import sys
import threading

import pytest
import yaml

from conftest import run
from edgecompress.tools.lanes import Group, Lanes, groups

# a stage's command: note its start, wait (up to a minute) until the stage it meets has started too, note its end (or
# fail) in <name>.txt; a stage that meets another can only finish if the two run side by side
STEP = ("python -c \"import os, sys, time; start = time.time(); open('{name}.started', 'w').close(); "
        "[time.sleep(0.05) for _ in range(1200) if '{meet}' and not os.path.exists('{meet}.started')]; "
        "sys.exit(4) if '{meet}' and not os.path.exists('{meet}.started') else None; "
        "open('{name}.txt', 'w').write(f'{{start}} {{time.time()}}'); sys.exit({code})\"")


def project(tmp_path, failing: str = "") -> dict:
    """A DVC project: a and b independent (each waits to meet the other), c after a, `timed` (exclusive) after all
    three, `summary` after it."""
    shapes = {"a": [], "b": [], "c": ["a"], "timed": ["a", "b", "c"], "summary": ["timed"]}
    meets = {"a": "b", "b": "a"}
    stages = {name: {"cmd": STEP.format(name=name, meet=meets.get(name, ""), code=3 if name == failing else 0),
                     "deps": [f"{dep}.txt" for dep in deps], "outs": [f"{name}.txt"]}
              for name, deps in shapes.items()}
    stages["timed"]["meta"] = {"exclusive": True}
    commit(tmp_path, stages)
    return shapes


def commit(tmp_path, stages: dict) -> None:
    """`stages` as the dvc.yaml of a new git and DVC repository at tmp_path."""
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    for args in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                 ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "p"]):
        run(args, tmp_path)


def span(path) -> tuple:
    start, end = map(float, path.read_text().split())
    return start, end


def test_independent_stages_run_side_by_side_and_an_exclusive_one_alone(tmp_path):
    project(tmp_path)
    log = run([sys.executable, "-m", "edgecompress.tools.lanes", "--jobs", "2"], tmp_path).stdout
    (a0, a1), (b0, b1), (c0, c1), (t0, t1), (s0, _) = (span(tmp_path / f"{n}.txt")
                                                       for n in ("a", "b", "c", "timed", "summary"))
    assert a0 < b1 and b0 < a1  # a and b overlapped: each waited for the other to start
    assert c0 >= a1 and t0 >= max(a1, b1, c1) and s0 >= t1
    assert "b | Running stage 'b'" in log  # every line says which stage printed it
    assert "up to date" in run(["dvc", "status"], tmp_path).stdout
    again = run([sys.executable, "-m", "edgecompress.tools.lanes"], tmp_path).stdout
    assert "Running stage" not in again and "up to date" in again


def test_a_failed_stage_stops_the_run_and_the_finished_ones_keep_their_outputs(tmp_path):
    project(tmp_path, failing="b")
    result = run([sys.executable, "-m", "edgecompress.tools.lanes", "--jobs", "2"], tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: dvc repro of b failed (its output above says why); the stages that finished keep their outputs")
    assert "b | ERROR: failed to reproduce 'b'" in result.stdout
    assert not (tmp_path / "timed.txt").exists()  # nothing after the failure
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]
    assert {"a", "c"} <= set(lock) and "b" not in lock
    status = run(["dvc", "status"], tmp_path).stdout
    assert "a:" not in status and "c:" not in status and "b:" in status


# a stage that loads TensorFlow: it notes whether TensorFlow was imported before its own code ran
TENSORFLOW_STAGE = """import sys
from edgecompress.core.errors import run_stage


def main(out):
    open(out, "w").write(str("tensorflow" in sys.modules))


if __name__ == "__main__":
    run_stage(main, loads_tensorflow=True)
"""


@pytest.mark.parametrize("flags, preloaded", [([], "True"), (["--no-preload"], "False")])
def test_a_tensorflow_stage_forks_from_the_preload_server_unless_told_not_to(tmp_path, flags, preloaded):
    (tmp_path / "stage.py").write_text(TENSORFLOW_STAGE)
    commit(tmp_path, {"tf": {"cmd": "python stage.py out.txt", "deps": ["stage.py"], "outs": ["out.txt"]}})
    run([sys.executable, "-m", "edgecompress.tools.lanes", *flags], tmp_path)
    assert (tmp_path / "out.txt").read_text() == preloaded


def test_a_conversion_rides_with_its_model_and_the_longest_chain_goes_first():
    upstream = {"prepare": set(), "train": {"prepare"}, "student": {"prepare"},
                "pruned": {"prepare", "train"}, "pqat": {"pruned"},
                "convert@baseline": {"prepare", "train"}, "convert@pruned": {"prepare", "pruned"},
                "convert@pqat": {"pqat"}, "convert@student": {"prepare", "student"},
                "evaluate@pruned": {"convert@pruned"}, "report": {"evaluate@pruned"}}
    stale = list(upstream)
    planned = groups(upstream, stale, later={"evaluate@pruned", "report"})
    assert planned == [
        Group(["prepare"], set()),
        Group(["train", "convert@baseline"], {"prepare"}),
        Group(["pruned", "convert@pruned"], {"prepare", "train"}),
        Group(["student", "convert@student"], {"prepare"}),
        Group(["pqat", "convert@pqat"], {"pruned"}),
    ]


def test_only_the_stale_stages_are_planned():
    upstream = {"prepare": set(), "train": {"prepare"}, "convert@baseline": {"train"}, "other": {"prepare"}}
    assert groups(upstream, ["train", "convert@baseline"], later=set()) == [Group(["train", "convert@baseline"])]


def test_a_broken_dvc_yaml_is_one_line(tmp_path):
    project(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: echo ${nowhere}\n")
    result = run([sys.executable, "-m", "edgecompress.tools.lanes"], tmp_path, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: failed to parse 'stages.a.cmd' in 'dvc.yaml'")


def test_dvc_missing_from_path_is_one_line(tmp_path):
    project(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "edgecompress.tools.lanes"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == "error: dvc is not on PATH: run `make run`, or `source .venv/bin/activate` first\n"


def test_an_exception_in_a_lane_fails_its_group_instead_of_leaving_the_run_waiting(tmp_path, monkeypatch):
    def broken(self, args, label, finished=None):
        raise OSError("cannot start dvc")

    raised = []
    monkeypatch.setattr(Lanes, "call", broken)
    monkeypatch.setattr(threading, "excepthook", lambda hook: raised.append(hook.exc_value))  # it prints a traceback
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(Lanes(tmp_path, 2).run([Group(["a"]), Group(["b"])])))
    runner.start()
    runner.join(timeout=30)
    assert outcome == [False]
    assert [str(err) for err in raised] == ["cannot start dvc"] * 2  # both lanes had started
