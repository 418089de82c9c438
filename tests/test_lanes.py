"""edgecompress.tools.lanes: which stages run together and how, on real tiny DVC projects that train nothing."""
import subprocess
import sys
import threading

import yaml

from conftest import run
from edgecompress.tools.lanes import downstream, plan, read_project, run_lanes

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


# the shape of the real DAG: prepare -> models -> conversions, evaluate (exclusive) -> report
DAG = {"prepare": set(), "train": {"prepare"}, "student": {"prepare"}, "pruned": {"prepare", "train"},
       "pqat": {"pruned"}, "convert@baseline": {"prepare", "train"}, "convert@pruned": {"prepare", "pruned"},
       "convert@pqat": {"pqat"}, "convert@student": {"prepare", "student"},
       "evaluate@pruned": {"convert@pruned"}, "report": {"evaluate@pruned", "student"}}


def test_a_conversion_rides_with_its_model_and_the_most_downstream_goes_first():
    groups, after, later = plan(DAG, changed={"prepare"}, exclusive={"evaluate@pruned"})
    assert list(groups.items()) == [
        ("prepare", ["prepare"]),
        ("train", ["train", "convert@baseline"]),
        ("pruned", ["pruned", "convert@pruned"]),
        ("student", ["student", "convert@student"]),
        ("pqat", ["pqat", "convert@pqat"]),
    ]
    assert after == {"prepare": set(), "train": {"prepare"}, "student": {"prepare"}, "pruned": {"prepare", "train"},
                     "pqat": {"pruned"}}
    assert later == {"evaluate@pruned", "report"}


def test_the_stages_downstream_of_a_changed_one_are_stale_and_none_upstream():
    assert downstream(DAG, {"pruned"}) == {"pruned", "pqat", "convert@pruned", "convert@pqat", "evaluate@pruned",
                                           "report"}
    groups, after, later = plan(DAG, changed={"pruned", "convert@student"}, exclusive={"evaluate@pruned"})
    assert groups == {"pruned": ["pruned", "convert@pruned"], "pqat": ["pqat", "convert@pqat"],
                      "convert@student": ["convert@student"]}
    assert list(groups)[0] == "pruned" and after == {"pruned": set(), "pqat": {"pruned"}, "convert@student": set()}
    assert later == {"evaluate@pruned", "report"}
    assert plan(DAG, changed={"report"}, exclusive={"evaluate@pruned"}) == ({}, {}, {"report"})
    assert plan(DAG, changed=set(), exclusive={"evaluate@pruned"}) == ({}, {}, set())


def test_only_the_stale_stages_are_planned():
    upstream = {"prepare": set(), "train": {"prepare"}, "convert@baseline": {"train"}, "other": {"prepare"}}
    assert plan(upstream, {"train"}, set()) == ({"train": ["train", "convert@baseline"]}, {"train": set()}, set())


def test_the_graph_and_the_exclusive_stages_come_from_dvc_and_dvc_yaml(tmp_path):
    commit(tmp_path, {"a": {"cmd": "echo a > a.txt", "outs": ["a.txt"]},
                      "b": {"cmd": "cat a.txt > b.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
                      "time": {"foreach": ["x", "y"], "do": {"cmd": "cat b.txt > ${item}.txt", "deps": ["b.txt"],
                                                             "outs": ["${item}.txt"], "meta": {"exclusive": True}}}})
    (tmp_path / "a.txt").write_text("a\n")
    upstream, changed, exclusive = read_project(tmp_path)
    assert upstream == {"a": set(), "b": {"a"}, "time@x": {"b"}, "time@y": {"b"}}
    assert changed == {"a", "b", "time@x", "time@y"} and exclusive == {"time@x", "time@y"}


def test_run_lanes_follows_the_order_and_starts_nothing_after_a_failure():
    ran = []

    def repro(stages):
        ran.append(stages)
        return 2 if stages == ["b"] else 0

    groups = {"a": ["a"], "c": ["c", "d"], "b": ["b"], "e": ["e"]}
    after = {"a": set(), "b": set(), "c": {"a"}, "e": {"b"}}
    assert run_lanes(groups, after, 1, repro) == ["b"]
    assert ran == [["a"], ["c", "d"], ["b"]]


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


def test_an_exception_in_a_lane_fails_its_group_instead_of_leaving_the_run_waiting(capsys):
    started = []

    def broken(stages):
        started.append(stages)
        raise OSError("cannot start dvc")

    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(
        run_lanes({"a": ["a"], "b": ["b"], "c": ["c"]}, {"a": set(), "b": set(), "c": {"a"}}, 2, broken)))
    runner.start()
    runner.join(timeout=30)
    assert [sorted(failed) for failed in outcome] == [["a", "b"]]
    assert sorted(started) == [["a"], ["b"]]  # both lanes had started, c (after a) never did
    assert capsys.readouterr().err.count("OSError: cannot start dvc") == 2  # each with its traceback
