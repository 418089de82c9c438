"""The seed aggregate on a real DVC project's experiments: a stage whose metrics depend on `seed` alone."""
import json
import sys

import pytest

from conftest import run

MAKE = """import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
pathlib.Path("metrics").mkdir(exist_ok=True)
json.dump({"params_count": 5, "fp32": {"accuracy": 0.9 + p["seed"] / 100 + p["bonus"]},
           "int8": {"accuracy": 0.8, "latency_p50_ms": 1 + p["seed"]}}, open("metrics/m.json", "w"))
"""
OTHER = """import json
json.dump({"fp32": {"accuracy": 0.5}}, open("metrics/other.json", "w"))
"""
DVC_YAML = """stages:
  make:
    cmd: python make.py
    deps: [make.py]
    params: [seed, bonus]
    metrics: [metrics/m.json: {cache: false}]
  other:
    cmd: python other.py
    deps: [other.py, metrics/m.json]
    metrics: [metrics/other.json: {cache: false}]
"""


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    """A committed run at seed 0 and experiments at seeds 1 and 3, and one that also changes another param; `other`
    is run in each but depends on no seed, as a stage that an experiment with targets leaves out."""
    repo = tmp_path_factory.mktemp("seeds")
    for name, text in (("make.py", MAKE), ("other.py", OTHER), ("dvc.yaml", DVC_YAML),
                       ("params.yaml", "seed: 0\nbonus: 0\n")):
        (repo / name).write_text(text)
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seed 0"], repo)
    for overrides in (["seed=1"], ["seed=3"], ["seed=2", "bonus=0.05"]):
        run(["dvc", "exp", "run", *sum((["-S", o] for o in overrides), [])], repo)
    return repo


def test_runs_differing_only_in_seed_are_aggregated(experiments):
    result = run([sys.executable, "-m", "edgecompress.report.seeds", "--out", "out"], experiments)
    assert "left out (params other than seed differ, or a seed run twice): " in result.stdout
    assert "not measured anew in every run, left out: other" in result.stdout
    seeds = json.loads((experiments / "out/seeds.json").read_text())
    assert sorted(r["seed"] for r in seeds["runs"]) == [0, 1, 3]
    fp32 = next(r for r in seeds["rows"] if r["quantization"] == "fp32")
    by_seed = dict(zip(fp32["seeds"], fp32["accuracy"]))
    assert by_seed == pytest.approx({0: 0.90, 1: 0.91, 3: 0.93})
    assert fp32["mean"] == pytest.approx(0.91333333) and fp32["std"] == pytest.approx(0.0152752523)
    assert fp32["max"] - fp32["min"] == pytest.approx(0.03)
    int8 = next(r for r in seeds["rows"] if r["quantization"] == "int8")
    assert int8["std"] == 0 and int8["mean"] == pytest.approx(0.8)
    text = (experiments / "out/seeds.md").read_text()
    assert text.startswith("## Seeds") and "| m | fp32 | " in text and "| 0.9133 | 1.53 | 3.00 |" in text
