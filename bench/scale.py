"""Benchmark the stages at paper 000's image size on growing datasets: throughput and peak memory per stage.

For each dataset size, generates a class-per-folder tree of 224x224 RGB TIFF tiles (the NCT-CRC-HE-100K
format, 9 classes) and runs, in a scratch project, `prepare`, one epoch of the baseline at
data.image_size 224, `convert` (fp32, int8) and `evaluate`, each as its own process the way DVC runs it. Prints
images per second for prepare and training and each stage's peak resident memory; a stage whose peak grows
by more than `--max-growth` from the smallest to the largest dataset holds its data in memory, and makes the
benchmark exit 1. Run it with `make bench-scale`.
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

from edgecompress.report import report_figures

from prepare import generate  # bench/prepare.py: the same tiles

ROOT = Path(__file__).resolve().parents[1]
STAGES = (("prepare", ["data"]), ("train", ["data", "models/baseline"]), ("convert", ["data", "models/baseline"]),
          ("evaluate", ["data", "models/baseline", "models/baseline", "metrics"]))


def params(tiles: Path) -> dict:
    """The project's default params with the tiles as data at 224 px, one epoch, fp32 and int8 only."""
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    values["data"].update(source="folder", path=str(tiles), test_path=str(tiles), image_size=224, channels=3)
    values["train"]["epochs"] = 1
    values["convert"]["quantizations"] = ["fp32", "int8"]  # fp32: the reference evaluate pairs every model with
    return values


def run_stage(name: str, args: list, cwd: Path) -> tuple:
    """(wall seconds, peak resident bytes) of one stage script run as its own process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "stages" / f"{name}.py"), *args], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{name} failed ({process.returncode}): {process.stderr.read()}")
    return seconds, usage.ru_maxrss * 1024  # Linux reports kilobytes


def measure(images: int, scratch: Path) -> dict:
    """Every stage's (seconds, peak bytes) on a fresh project of `images` tiles, and the images per second."""
    tiles = scratch / "tiles"
    generate(tiles, images // 9)
    project = scratch / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params(tiles), sort_keys=False))
    figures = {name: run_stage(name, args, project) for name, args in STAGES}
    card = json.loads((project / "data/dataset.json").read_text())
    seconds = report_figures.read_curve(project / "plots/train/baseline.csv")["seconds"]
    counts = {split: per_class["total"] for split, per_class in card["counts"].items()}
    total = sum(counts.values())
    return {"images": total, "stages": figures, "prepare_per_s": total / figures["prepare"][0],
            "train_per_s": counts["train"] * len(seconds) / sum(seconds)}  # the epoch includes its validation pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000], help="tiles per dataset")
    parser.add_argument("--max-growth", type=float, default=1.25, help="largest / smallest peak memory allowed")
    args = parser.parse_args()
    results = []
    for images in args.sizes:
        with tempfile.TemporaryDirectory(prefix="edgecompress-bench-scale-") as tmp:
            results.append(measure(images, Path(tmp)))
        r = results[-1]
        print(f"{r['images']:,} tiles: prepare {r['prepare_per_s']:,.0f} images/s, training "
              f"{r['train_per_s']:,.1f} images/s (one epoch at 224 px)")
        for name, (seconds, peak) in r["stages"].items():
            print(f"  {name:<10} {seconds:7.1f} s   peak memory {peak / 1e6:8,.0f} MB")
    missed = False
    for name, _ in STAGES:
        growth = results[-1]["stages"][name][1] / results[0]["stages"][name][1]
        ok = growth <= args.max_growth
        missed |= not ok
        print(f"{name}: peak memory at {results[-1]['images']:,} tiles is {growth:.2f}x the peak at "
              f"{results[0]['images']:,} (target at most {args.max_growth}x){'' if ok else '   MISSED'}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
