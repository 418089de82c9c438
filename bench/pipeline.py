"""Benchmark the pipeline on a fresh clone of HEAD with the default params, against its targets.

Runs what `make run` runs (edgecompress.tools.lanes: `dvc repro` on two lanes) from scratch and prints the wall time of
every `dvc repro` it ran (a stage with its conversion, or the exclusive evaluations), slowest first (the profile;
the two lanes overlap), the wall time of the whole run and of
a no-op `dvc repro`, the baseline's accuracies and int8 / fp32 latency ratio, and how much smaller gzipped
pcqat's int8 model, the stacked chain's and the clustered models are than the baseline's fp32 model, the students'
accuracies and lowrank's size and accuracy; each figure beside its target. Exits 1 if any target is missed.
Run it with `make bench` (the venv's python and dvc must be first on PATH); `--keep DIR` keeps the run, and
the lanes' output goes to DIR/bench.log.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from edgecompress.measure import compare
from edgecompress.report.selection import KB
from edgecompress.tools import lanes

ROOT = Path(__file__).resolve().parents[1]
JOBS = 2  # make run's lanes


def timed(args, cwd) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def print_profile(seconds: dict) -> None:
    total = sum(seconds.values())
    print(f"{'stages':<48} {'seconds':>8} {'share':>6}   (share of their sum, {total:.0f} s on {JOBS} lanes)")
    for stage, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"{stage:<48} {value:8.1f} {value / total:6.1%}")


def check(results: list, label: str, value: str, met: bool, target: str) -> None:
    """Print one figure with its target and remember whether it was met."""
    results.append(met)
    print(f"{label}: {value}   (target {target}){'' if met else '   MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="run in this new folder and keep it (its dvc.lock, metrics, "
                                                  "plots and report are the run's outputs to commit)")
    args = parser.parse_args()
    keep = args.keep
    with tempfile.TemporaryDirectory(prefix="edgecompress-bench-") as tmp:
        repo = keep or Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
        os.environ["PYTHONPATH"] = str(repo / "src")  # the stages import the clone's code, not the venv's editable one
        start = time.perf_counter()
        with open(repo / "bench.log", "w") as log:
            stages = lanes.reproduce(repo, JOBS, out=log)
        full = time.perf_counter() - start
        noop = timed(["dvc", "repro"], repo)
        metrics = {path.stem: json.loads(path.read_text()) for path in (repo / "metrics").glob("*.json")}
        details = {path.stem: json.loads(path.read_text()) for path in (repo / "metrics/details").glob("*.json")}
        budgets = yaml.safe_load((repo / "params.yaml").read_text())["report"]["budgets"]
    fp32, int8 = metrics["baseline"]["fp32"], metrics["baseline"]["int8"]
    print_profile(stages)
    results = []
    check(results, "from-scratch make run", f"{full:.1f} s", full <= 600, "<= 600 s")
    check(results, "no-op dvc repro", f"{noop:.1f} s", noop <= 3, "<= 3 s")
    check(results, "baseline fp32 accuracy", f"{fp32['accuracy']:.4f}", fp32["accuracy"] >= 0.97, ">= 0.97")
    ratio = int8["latency_p50_ms"] / fp32["latency_p50_ms"]
    check(results, "baseline int8 / fp32 p50 latency", f"{ratio:.3f} ({int8['latency_p50_ms']:.4f} / "
          f"{fp32['latency_p50_ms']:.4f} ms)", ratio <= 0.4, "<= 0.4")
    loss = 100 * (fp32["accuracy"] - int8["accuracy"])
    check(results, "baseline int8 accuracy loss", f"{loss:+.2f} points", loss <= 1, "<= 1")
    pcqat = metrics["pcqat"]["int8"]
    smaller, lost = fp32["gzip_bytes"] / pcqat["gzip_bytes"], 100 * (fp32["accuracy"] - pcqat["accuracy"])
    check(results, "pcqat int8 gzipped, x smaller than the baseline fp32", f"{smaller:.1f}x", smaller >= 12, ">= 12x")
    check(results, "pcqat int8 accuracy loss", f"{lost:+.2f} points (sparsity {pcqat['sparsity']:.3f}, <= "
          f"{pcqat['max_distinct_per_channel']} values per channel)", lost <= 1.5, "<= 1.5")
    stacked, tiny_kb = metrics["tiny_pcqat"]["int8"], budgets["tiny"]["max_gzip_kb"]
    lost = 100 * (fp32["accuracy"] - stacked["accuracy"])
    check(results, "stacked chain (tiny_pcqat) int8 gzipped", f"{stacked['gzip_bytes'] / KB:.1f} KB "
          f"({fp32['gzip_bytes'] / stacked['gzip_bytes']:.0f}x smaller than the baseline fp32)",
          stacked["gzip_bytes"] <= tiny_kb * KB, f"<= {tiny_kb:g} KB (the tiny budget)")
    check(results, "stacked chain (tiny_pcqat) int8 accuracy loss", f"{lost:+.2f} points", lost <= 1, "<= 1")
    students = {name: metrics[name]["fp32"]["accuracy"]
                for name in ("student_scratch", "student_distilled", "student_attention")}
    control, distilled = (details[name]["models"]["fp32"]["predictions"]
                           for name in ("student_scratch", "student_distilled"))
    versus = compare.flips(control, distilled, details["student_scratch"]["labels"])
    worse = versus["flips_lost"] > versus["flips_gained"] and compare.significant(versus["mcnemar_p"])
    check(results, "distilled student fp32 accuracy against the label-only one",
          f"{students['student_distilled']:.4f} vs {students['student_scratch']:.4f}, images gained / lost "
          f"{versus['flips_gained']} / {versus['flips_lost']}, McNemar p {versus['mcnemar_p']:.2g}: "
          f"{compare.verdict(versus['mcnemar_p'])} (attention "
          f"{students['student_attention']:.4f})", not worse, "not significantly worse")
    behind = 100 * (fp32["accuracy"] - students["student_distilled"])
    check(results, "distilled student behind the teacher", f"{behind:+.2f} points", behind <= 1.5, "<= 1.5")
    lowrank = metrics["lowrank"]
    share, lost = lowrank["params_count"] / metrics["baseline"]["params_count"], 100 * (
        fp32["accuracy"] - lowrank["fp32"]["accuracy"])
    check(results, "lowrank parameters / the baseline's", f"{share:.3f}", share <= 0.5, "<= 0.5")
    check(results, "lowrank fp32 accuracy loss", f"{lost:+.2f} points", lost <= 1, "<= 1")
    for name in sorted(m for m in metrics if m.startswith("clustered_")):
        times = {q: fp32["gzip_bytes"] / b["gzip_bytes"] for q, b in metrics[name].items()
                 if isinstance(b, dict) and "gzip_bytes" in b}
        int8_times = times.pop("int8")
        others = ", ".join(f"{quant} {x:.1f}x" for quant, x in times.items())  # float files: no target
        check(results, f"{name} int8 gzipped, x smaller", f"{int8_times:.1f}x (also {others})", int8_times >= 3,
              ">= 3x")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
