"""What a search found, as data and as the report's "Search" section: every trial's values and measured figures, the
pick among the trials that meet the budget with its `dvc exp apply` line, and which params mattered most."""
from optuna.trial import TrialState

from edgecompress.report.selection import describe_limits
from edgecompress.search.study import OBJECTIVES, finite, limits

FIGURES = dict(zip(OBJECTIVES, ("accuracy_lost_points", "gzip_kb", "latency_p50_ms")))
PREFERRED = dict(zip(("accuracy", "gzip", "latency"), FIGURES.values()))  # a budget's `prefer`: the figure it minimizes


def trial_record(trial) -> dict:
    """One trial: its number, state, experiment, values and, if complete, the pick's figures and whether it fits."""
    record = {"number": trial.number, "state": trial.state.name, "experiment": trial.user_attrs.get("experiment"),
              "values": dict(trial.params)}
    if trial.state == TrialState.COMPLETE:
        record |= {"model": trial.user_attrs["model"], "quantization": trial.user_attrs["quantization"],
                   "accuracy": trial.user_attrs["accuracy"], "fits": trial.user_attrs["fits"],
                   **{FIGURES[key]: finite(value) for key, value in zip(OBJECTIVES, trial.values)}}
    return record


def best(records: list, prefer: str) -> dict:
    """The trial that meets the budget with the best `prefer` (accuracy, gzip or latency; the others break ties)."""
    keys = [PREFERRED[prefer], *(figure for p, figure in PREFERRED.items() if p != prefer)]
    fitting = [r for r in records if r.get("fits")]
    return min(fitting, key=lambda r: tuple(r[k] for k in keys)) if fitting else None


def summary(the_study, budget_name: str, budget: dict, models: list, importances: dict, seconds: float) -> dict:
    records = [trial_record(t) for t in the_study.get_trials(deepcopy=False)]
    chosen = best(records, budget["prefer"])
    return {"budget": budget_name, "limits": limits(budget), "prefer": budget["prefer"], "models": models,
            "trials": records, "pick": chosen, "apply": f"dvc exp apply {chosen['experiment']}" if chosen else None,
            "importance": importances, "seconds": round(seconds, 1)}


def markdown(result: dict) -> str:
    """The report's "Search" section for one budget."""
    params = list(dict.fromkeys(p for r in result["trials"] for p in r["values"]))
    lines = [f"## Search: {result['budget']}", "",
             f"{len(result['trials'])} trials (DVC experiments named {result['budget']}-<trial>) over "
             f"{', '.join(f'`{p}`' for p in params)}, each measuring {', '.join(result['models'])}; a trial's figures "
             f"are those of the file the budget picks among them ({describe_limits(result['limits'])}, best "
             f"{result['prefer']}). {result['seconds']:.0f} s in this run.", ""]
    if result["pick"]:
        p = result["pick"]
        lines += [f"**Pick**: trial {p['number']}, {p['model']} {p['quantization']}: accuracy {p['accuracy']:.4f} "
                  f"({-p['accuracy_lost_points']:+.2f} points), gzip {p['gzip_kb']:,.1f} KB, p50 "
                  f"{p['latency_p50_ms']:.3f} ms. Bring it into the workspace with `{result['apply']}`.", ""]
    else:
        lines += ["No trial meets the budget.", ""]
    lines += ["| trial | " + " | ".join(params) + " | model | accuracy | Δ points | gzip KB | p50 ms | fits |",
              "|---" * (len(params) + 7) + "|"]
    for r in result["trials"]:
        values = " | ".join(f"{r['values'][p]:.4g}" if isinstance(r["values"].get(p), float) else
                            str(r["values"].get(p, "")) for p in params)
        if r["state"] != "COMPLETE":
            lines.append(f"| {r['number']} | {values} | {r['state'].lower()} |  |  |  |  |  |")
            continue
        lines.append(f"| {r['number']} | {values} | {r['model']} {r['quantization']} | {r['accuracy']:.4f} | "
                     f"{-r['accuracy_lost_points']:+.2f} | {r['gzip_kb']:,.1f} | {r['latency_p50_ms']:.3f} | "
                     f"{'yes' if r['fits'] else 'no'} |")
    if result["importance"]:
        lines += ["", f"Importance of each param for the budget's preference ({result['prefer']}; Optuna's fANOVA "
                      "over the complete trials): " + ", ".join(f"`{p}` {v:.2f}"
                                                                  for p, v in result["importance"].items()) + "."]
    return "\n".join(lines) + "\n"

