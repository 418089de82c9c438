"""Benchmark the default pipeline against its targets: a from-scratch run on a fresh clone of HEAD, or a finished run.

Runs what `make run` runs (edgecompress.tools.lanes: `dvc repro` on two lanes) from scratch and prints the wall time of
every `dvc repro` it ran (a stage with its conversion, or the exclusive evaluations), slowest first (the profile;
the two lanes overlap), the wall time of the whole run and of a no-op `dvc repro`, then the run's quality figures,
each beside its target: the baseline's accuracy and int8 / fp32 latency ratio, how much smaller gzipped pcqat's int8
model, the stacked chain's and the clustered models are than the baseline's fp32 model, lowrank's parameters; and
that the int8 files of the baseline, pcqat and tiny_pcqat, the distilled student and lowrank are not significantly
less accurate than the baseline fp32 (the distilled student: nor than the label-only one), paired on the test
images (McNemar), since a few images are noise. Exits 1 if any target is missed. Run it with `make bench` (the
venv's python and dvc must be first on PATH); `--keep DIR` keeps the run, and the lanes' output goes to
DIR/bench.log; `--outputs DIR` only checks the quality targets of the run DIR holds (`--outputs .`: the committed
one).
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


def read_run(repo: Path) -> tuple:
    """(metrics, details, budgets) of the run whose outputs `repo` holds."""
    metrics = {path.stem: json.loads(path.read_text()) for path in (repo / "metrics").glob("*.json")}
    details = {path.stem: json.loads(path.read_text()) for path in (repo / "metrics/details").glob("*.json")}
    return metrics, details, yaml.safe_load((repo / "params.yaml").read_text())["report"]["budgets"]


def not_worse(results: list, label: str, versus: dict, images: int, than: str) -> None:
    """Check that a model is not significantly less accurate than `than`, paired on the same `images` test images
    (`versus`: the flips and McNemar's p): a loss of a few images is noise, not a missed target."""
    worse = versus["flips_lost"] > versus["flips_gained"] and compare.significant(versus["mcnemar_p"])
    check(results, label, compare.described(versus, images), not worse, f"not significantly worse than {than}")


def quality(results: list, metrics: dict, details: dict, budgets: dict) -> None:
    """Check the default run's figures: the baseline's accuracy, sizes and latency against fixed targets, and the
    compressed models' and the students' accuracies as not significantly worse than the reference's."""
    fp32, int8 = metrics["baseline"]["fp32"], metrics["baseline"]["int8"]
    images = len(details["baseline"]["labels"])
    reference = " ".join(compare.REFERENCE)

    def against_reference(label, model, quant):
        not_worse(results, label, metrics[model][quant], images, reference)  # metrics hold the flips against it

    check(results, "baseline fp32 accuracy", f"{fp32['accuracy']:.4f}", fp32["accuracy"] >= 0.97, ">= 0.97")
    ratio = int8["latency_p50_ms"] / fp32["latency_p50_ms"]
    check(results, "baseline int8 / fp32 p50 latency", f"{ratio:.3f} ({int8['latency_p50_ms']:.4f} / "
          f"{fp32['latency_p50_ms']:.4f} ms)", ratio <= 0.4, "<= 0.4")
    against_reference("baseline int8 accuracy", "baseline", "int8")
    pcqat = metrics["pcqat"]["int8"]
    smaller = fp32["gzip_bytes"] / pcqat["gzip_bytes"]
    check(results, "pcqat int8 gzipped, x smaller than the baseline fp32", f"{smaller:.1f}x (sparsity "
          f"{pcqat['sparsity']:.3f}, <= {pcqat['max_distinct_per_channel']} values per channel)", smaller >= 12,
          ">= 12x")
    against_reference("pcqat int8 accuracy", "pcqat", "int8")
    stacked, tiny_kb = metrics["tiny_pcqat"]["int8"], budgets["tiny"]["max_gzip_kb"]
    check(results, "stacked chain (tiny_pcqat) int8 gzipped", f"{stacked['gzip_bytes'] / KB:.1f} KB "
          f"({fp32['gzip_bytes'] / stacked['gzip_bytes']:.0f}x smaller than the baseline fp32)",
          stacked["gzip_bytes"] <= tiny_kb * KB, f"<= {tiny_kb:g} KB (the tiny budget)")
    against_reference("stacked chain (tiny_pcqat) int8 accuracy", "tiny_pcqat", "int8")
    against_reference("distilled student fp32 accuracy", "student_distilled", "fp32")
    control, distilled = (details[name]["models"]["fp32"]["predictions"]
                          for name in ("student_scratch", "student_distilled"))
    not_worse(results, "distilled student fp32 accuracy against the label-only one",
              compare.flips(control, distilled, details["student_scratch"]["labels"]), images, "student_scratch fp32")
    print(f"(attention-transfer student fp32 accuracy: {metrics['student_attention']['fp32']['accuracy']:.4f})")
    lowrank = metrics["lowrank"]
    share = lowrank["params_count"] / metrics["baseline"]["params_count"]
    check(results, "lowrank parameters / the baseline's", f"{share:.3f}", share <= 0.5, "<= 0.5")
    against_reference("lowrank fp32 accuracy", "lowrank", "fp32")
    for name in sorted(m for m in metrics if m.startswith("clustered_")):
        times = {q: fp32["gzip_bytes"] / b["gzip_bytes"] for q, b in metrics[name].items()
                 if isinstance(b, dict) and "gzip_bytes" in b}
        int8_times = times.pop("int8")
        others = ", ".join(f"{quant} {x:.1f}x" for quant, x in times.items())  # float files: no target
        check(results, f"{name} int8 gzipped, x smaller", f"{int8_times:.1f}x (also {others})", int8_times >= 3,
              ">= 3x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--keep", type=Path, help="run in this new folder and keep it (its dvc.lock, metrics, "
                                                 "plots and report are the run's outputs to commit)")
    where.add_argument("--outputs", type=Path, help="run nothing: check the quality targets of the finished run "
                                                    "whose outputs this folder holds (such as the repository's)")
    args = parser.parse_args()
    results = []
    if args.outputs:
        run = read_run(args.outputs)
    else:
        with tempfile.TemporaryDirectory(prefix="edgecompress-bench-") as tmp:
            repo = args.keep or Path(tmp) / "repo"
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
            os.environ["PYTHONPATH"] = str(repo / "src")  # the stages import the clone's code, not the venv's
            start = time.perf_counter()
            with open(repo / "bench.log", "w") as log:
                stages = lanes.reproduce(repo, JOBS, out=log)
            full = time.perf_counter() - start
            noop = timed(["dvc", "repro"], repo)
            run = read_run(repo)
        print_profile(stages)
        check(results, "from-scratch make run", f"{full:.1f} s", full <= 600, "<= 600 s")
        check(results, "no-op dvc repro", f"{noop:.1f} s", noop <= 3, "<= 3 s")
    quality(results, *run)
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
