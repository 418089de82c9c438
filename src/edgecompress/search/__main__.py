"""`python -m edgecompress.search BUDGET`: run the budget's study until it holds --trials complete trials, then write
search/<budget>.json and search/<budget>.md (the report's "Search" section). Run it at the repository's root."""
import argparse
import sys
import warnings
from pathlib import Path

import optuna
import yaml

from edgecompress import report
from edgecompress.core.errors import UserError
from edgecompress.core.files import write_json
from edgecompress.measure.compare import REFERENCE
from edgecompress.report.selection import recommend
from edgecompress.search import results, space, study, trials

FOLDER = Path("search")
STORAGE = f"sqlite:///{FOLDER}/optuna.db"  # the embedded default, beside the results (ignored by Git and DVC)


def menu_pick(budget: dict):
    """The budget's pick among the models of the workspace's last run (its metrics files), if there is one."""
    metrics = Path("metrics")
    if not (metrics / f"{REFERENCE[0]}.json").is_file():
        return None
    return recommend(report.rows(report.read_metrics(metrics), {}), budget)


def search(budget_name: str, trials_in_all, jobs: int, storage_url: str) -> dict:
    """Run the study of `budget_name` (trials_in_all: complete trials in all, None for search.trials) and write its
    results; every fault of the input is a UserError before anything is written."""
    if not Path("params.yaml").is_file():
        raise UserError("search: params.yaml not found; run it at the repository's root")
    values = yaml.safe_load(Path("params.yaml").read_text())
    declared = space.load(values, budget_name)
    budget, models, distributions = declared.budget, declared.models, declared.distributions
    trials_in_all = declared.trials if trials_in_all is None else trials_in_all
    if trials_in_all < 1 or jobs < 1:
        raise UserError(f"search: --trials {trials_in_all} --jobs {jobs} is not allowed; expected at least 1 each")
    if jobs > 1 and (budget["prefer"] == "latency" or "max_latency_p50_ms" in budget):
        raise UserError(f"search: --jobs {jobs} is not allowed for {budget_name}, which weighs latency: trials side by "
                        "side would time their models while others train; expected --jobs 1 (or workers on separate "
                        "machines sharing a --storage)")
    behind = trials.stale(space.standing(values, declared))
    if behind:
        raise UserError(f"search: {', '.join(behind[:4])}{' and more' if len(behind) > 4 else ''} not up to date in "
                        "the workspace (dvc status): every trial would run them again; expected `make run` (or `dvc "
                        "pull`) first")
    the_study = study.study(storage_url, budget_name, values["seed"], declared.startup_trials, declared.fingerprint,
                            space.current(values, distributions))
    FOLDER.mkdir(exist_ok=True)
    with open(FOLDER / f"{budget_name}.log", "a") as log:
        study.optimize(the_study, study.objective(budget_name, budget, models, distributions, log), trials_in_all,
                       jobs)
    mattered = study.importances(the_study, list(results.PREFERRED).index(budget["prefer"]), values["seed"])
    result = study.summary(the_study, budget_name, budget, models, mattered)
    write_json(FOLDER / f"{budget_name}.json", result)
    (FOLDER / f"{budget_name}.md").write_text(results.markdown(result, menu_pick(budget)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("budget", help="a budget of params.yaml's report.budgets")
    parser.add_argument("--trials", type=int, help="complete trials the study holds in all (default: search.trials)")
    parser.add_argument("--jobs", type=int, default=1, help="trials at once, each in its own temporary workspace")
    parser.add_argument("--storage", default=STORAGE, help=f"Optuna storage URL (default {STORAGE}); one shared "
                                                          "postgresql:// URL lets several machines search together")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: known as such
    try:
        search(args.budget, args.trials, args.jobs, args.storage)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print((FOLDER / f"{args.budget}.md").read_text())


if __name__ == "__main__":
    main()
