"""Seeds: the finished experiments that differ from their commit only in `seed`, aggregated into the mean and spread
of every model x quantization's accuracy; what one run cannot tell apart from the seed's noise.

    dvc exp run --queue -S seed=1,2,3 && dvc queue start -j 1   # wait for `dvc queue status`, then
    python -m edgecompress.report.seeds                         # report/seeds.md and report/seeds.json

Reads `dvc exp show --json` (the commit's own run counts as one seed); prints which experiments and which models
(those an experiment run with targets did not reproduce) it left out.
"""
import argparse
import json
import statistics
import subprocess
from pathlib import Path

from edgecompress.core.files import atomic_path, write_json

METRICS = "metrics/"


def runs(exp_show: list) -> tuple:
    """(runs, left out) of `dvc exp show --json`'s output: each run of the first commit (itself and its finished
    experiments) as {name, seed, metrics: {model: metrics}}; those whose params differ in more than `seed` are left
    out, by name."""
    commit = next(entry for entry in exp_show if entry["rev"] != "workspace")
    candidates = [(commit["name"] or commit["rev"][:7], commit["data"])]
    for experiment in commit.get("experiments") or []:
        candidates += [(rev["name"] or rev["rev"][:7], rev["data"]) for rev in experiment["revs"] if rev["data"]]

    def params(data) -> dict:
        return data["params"]["params.yaml"]["data"]

    baseline = {k: v for k, v in params(commit["data"]).items() if k != "seed"}
    found, left_out, seen = [], [], set()
    for name, data in candidates:
        values = params(data)
        if {k: v for k, v in values.items() if k != "seed"} != baseline or values["seed"] in seen:
            left_out.append(name)
            continue
        seen.add(values["seed"])
        found.append({"name": name, "seed": values["seed"], "metrics": {
            Path(path).stem: metrics["data"] for path, metrics in data["metrics"].items()
            if path.startswith(METRICS) and "data" in metrics}})
    return found, left_out


def rerun(found: list) -> tuple:
    """(models measured anew in every run, models left as they were): a run that did not reproduce a model (`dvc exp
    run` with targets) keeps its metrics file byte for byte, measured latencies included; such a model has no
    spread to show."""
    models = set.intersection(*(set(run["metrics"]) for run in found)) if found else set()
    stale = {model for model in models
             if len({json.dumps(run["metrics"][model], sort_keys=True) for run in found}) < len(found)}
    return sorted(models - stale), sorted(stale)


def aggregate(found: list, models: list) -> list:
    """One row per model x quantization of `models`: the seeds, each run's accuracy, its mean, sample standard
    deviation and range."""
    table = []
    for model in models:
        quants = set.intersection(*({q for q, v in run["metrics"][model].items()
                                     if isinstance(v, dict) and "accuracy" in v} for run in found))
        for quant in sorted(quants):
            values = [run["metrics"][model][quant]["accuracy"] for run in found]
            table.append({"model": model, "quantization": quant, "seeds": [run["seed"] for run in found],
                          "accuracy": values, "mean": statistics.fmean(values),
                          "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                          "min": min(values), "max": max(values)})
    return table


def markdown(table: list, found: list) -> str:
    lines = ["## Seeds", "",
             f"The same params under {len(found)} seeds (`seed`: data split, initial weights, augmentation, "
             "calibration): each model x quantization's accuracy as mean, sample standard deviation and range, in "
             "points. A difference between two models smaller than their spread here is the seed's, not the "
             "method's.", "",
             "| model | quant | seeds | mean accuracy | std (points) | range (points) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['quantization']} | {', '.join(map(str, r['seeds']))} | {r['mean']:.4f} | "
              f"{100 * r['std']:.2f} | {100 * (r['max'] - r['min']):.2f} |" for r in table]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("report"), help="folder for seeds.md and seeds.json")
    args = parser.parse_args()
    shown = subprocess.run(["dvc", "exp", "show", "--json"], check=True, capture_output=True, text=True).stdout
    found, left_out = runs(json.loads(shown))
    if left_out:
        print(f"left out (params other than seed differ, or a seed run twice): {', '.join(left_out)}")
    models, stale = rerun(found)
    if stale:
        print(f"not measured anew in every run, left out: {', '.join(stale)}")
    table = aggregate(found, models)
    write_json(args.out / "seeds.json", {"runs": [{"name": r["name"], "seed": r["seed"]} for r in found],
                                         "rows": table})
    with atomic_path(args.out / "seeds.md") as tmp:
        tmp.write_text(markdown(table, found))
    print(f"seeds: {len(found)} runs ({', '.join(str(r['seed']) for r in found)}), {len(table)} model x "
          f"quantization rows in {args.out / 'seeds.md'}")


if __name__ == "__main__":
    main()
