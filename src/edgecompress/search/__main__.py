"""`python -m edgecompress.search BUDGET`: run the budget's study until it holds --trials complete trials, then write
search/<budget>.json and search/<budget>.md (the report's "Search" section)."""
import argparse
import sys
import time
import warnings
from pathlib import Path

import optuna
import yaml

from edgecompress.core.errors import UserError
from edgecompress import report
from edgecompress.core.files import write_json
from edgecompress.measure.compare import REFERENCE
from edgecompress.report.selection import recommend
from edgecompress.search import results, space, study

FOLDER = Path("search")
STORAGE = f"sqlite:///{FOLDER}/optuna.db"  # the embedded default, beside the results (ignored by Git)


def search(budget_name: str, trials_in_all: int, jobs: int, storage_url: str, repo=Path(".")) -> dict:
    values = yaml.safe_load((repo / "params.yaml").read_text())
    budget, models, distributions = space.load(values, budget_name)
    settings = values["search"]
    the_study = study.study(storage_url, budget_name, values["seed"], settings["startup_trials"])
    start = time.perf_counter()
    (repo / FOLDER).mkdir(exist_ok=True)
    with open(repo / FOLDER / f"{budget_name}.log", "a") as log:
        study.optimize(the_study, study.objective(repo, budget_name, budget, models, distributions, log),
                       trials_in_all, jobs, space.current(values, distributions))
    mattered = study.importances(the_study, list(results.PREFERRED).index(budget["prefer"]), values["seed"])
    result = study.summary(the_study, budget_name, budget, models, mattered, time.perf_counter() - start)
    write_json(repo / FOLDER / f"{budget_name}.json", result)
    (repo / FOLDER / f"{budget_name}.md").write_text(results.markdown(result, menu_pick(repo / "metrics", budget)))
    return result


def menu_pick(metrics_dir: Path, budget: dict):
    """The budget's pick among the models of the workspace's last run (its metrics files), if it has one."""
    if not (metrics_dir / f"{REFERENCE[0]}.json").is_file():
        return None
    return recommend(report.rows(report.read_metrics(metrics_dir), {}), budget)


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
        trials_in_all = args.trials or yaml.safe_load(Path("params.yaml").read_text())["search"]["trials"]
        if trials_in_all < 1 or args.jobs < 1:
            raise UserError(f"search: --trials {trials_in_all} and --jobs {args.jobs} are not allowed; expected at "
                            "least 1 each")
        result = search(args.budget, trials_in_all, args.jobs, args.storage)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print((Path(FOLDER) / f"{args.budget}.md").read_text())


if __name__ == "__main__":
    main()
