"""A budget's search as an Optuna study: each trial a DVC experiment (search.trials), scored on the model that the
budget picks among its measured files (report.selection.recommend), with the budget's limits as constraints."""
from pathlib import Path
from urllib.parse import urlsplit

import optuna
from optuna.importance import FanovaImportanceEvaluator
from optuna.samplers import TPESampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from edgecompress.core.errors import UserError
from edgecompress.report import rows
from edgecompress.report.selection import LIMITS, measured, recommend, row_id
from edgecompress.search import results, space, trials

# what a trial minimizes, each as a budget key's measure: accuracy lost against the reference, gzip size, p50 latency
OBJECTIVES = ("max_loss_points", "max_gzip_kb", "max_latency_p50_ms")
UNMEASURABLE = 1e9  # a constraint's value where the pick has no figure for it (no TFLM run): far over any limit
HEARTBEAT_S = 60  # a trial whose worker stops beating for GRACE_S (killed, crashed) fails and is tried again once
GRACE_S = 300


def storage(url: str) -> RDBStorage:
    """Optuna's RDB storage at `url` (sqlite:///FILE, postgresql://...), with heartbeats, so that a worker that dies
    leaves its trial to be retried; one line naming the URL (without its password) where it cannot be reached."""
    shown = urlsplit(url)._replace(netloc=urlsplit(url).hostname or "").geturl() if "@" in url else url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=HEARTBEAT_S,
                          grace_period=GRACE_S,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as err:  # SQLAlchemy's and the drivers' errors have no common base worth naming
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"search: the storage {shown} cannot be used ({reason}); expected sqlite:///FILE or a "
                        "reachable postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from None


def pick(metrics_by_model: dict, budget: dict) -> dict:
    """The row that `budget` picks among one trial's measured files (or the closest miss), with "fits"."""
    table = rows(metrics_by_model, {})
    chosen = recommend(table, budget)
    wanted = (chosen["model"], chosen["quantization"]) if chosen["fits"] else row_id(chosen["closest"])
    return dict(next(r for r in table if row_id(r) == wanted), fits=chosen["fits"])


def limits(budget: dict) -> dict:
    return {key: value for key, value in budget.items() if key in LIMITS}


def constraints(row: dict, budget: dict) -> dict:
    """Each limit of `budget` as Optuna's constraint (at most 0 where met): the row's measure less the limit."""
    return {key: min(measured(row, key), UNMEASURABLE) - limit for key, limit in limits(budget).items()}


def objective(repo, budget_name: str, budget: dict, models: list, distributions: dict, log):
    """The function Optuna calls per trial: its values run as experiment <budget>-<number>; returns OBJECTIVES of
    the budget's pick and keeps what the report needs as the trial's user attributes."""
    def run(trial) -> tuple:
        values = space.sample(trial, distributions)
        name = f"{budget_name}-{trial.number}"
        ref = trials.run(repo, name, values, models, log)
        row = pick(trials.measurements(repo, ref, models), budget)
        for key, value in {"experiment": name, "model": row["model"], "quantization": row["quantization"],
                           "fits": row["fits"], "accuracy": row["accuracy"]}.items():
            trial.set_user_attr(key, value)
        for key, value in constraints(row, budget).items():
            trial.set_constraint(key, value)
        return tuple(min(measured(row, key), UNMEASURABLE) for key in OBJECTIVES)
    return run


def study(storage_url: str, budget_name: str, seed: int, startup_trials: int):
    """The study named after the budget in the storage (created, or loaded to resume), with a TPE sampler (it
    weighs the constraints that each trial sets)."""
    sampler = TPESampler(seed=seed, n_startup_trials=startup_trials, multivariate=True)
    return optuna.create_study(storage=storage(storage_url), study_name=budget_name, sampler=sampler,
                               directions=["minimize"] * len(OBJECTIVES), load_if_exists=True)


def optimize(the_study, objective_fn, trials_in_all: int, jobs: int, first: dict) -> None:
    """Run trials, `jobs` at a time, until the study holds `trials_in_all` complete ones (other workers' count); a
    new study's first trial is `first` ({param: value}), run alone (threads would both take it: SQLite has no row
    locks)."""
    if not the_study.trials:
        the_study.enqueue_trial(first)
        the_study.optimize(objective_fn, n_trials=1, catch=(RuntimeError,))
    done = sum(t.state == TrialState.COMPLETE for t in the_study.get_trials(deepcopy=False))
    if done < trials_in_all:
        the_study.optimize(objective_fn, n_trials=trials_in_all - done, n_jobs=jobs, catch=(RuntimeError,),
                           callbacks=[MaxTrialsCallback(trials_in_all, states=(TrialState.COMPLETE,))])


def importances(the_study, prefer_objective: int, seed: int) -> dict:
    """fANOVA's importance of each param (Optuna's evaluator, seeded) for one objective over the complete trials ({}
    with fewer than two, or where no param varied)."""
    complete = [t for t in the_study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(the_study, evaluator=FanovaImportanceEvaluator(seed=seed),
                                                       target=lambda t: t.values[prefer_objective])
    except (RuntimeError, ValueError):  # Optuna refuses where no param varied across the trials
        return {}


def trial_record(trial) -> dict:
    """One trial: its number, state, experiment, values and, if complete, the pick's figures and whether it fits."""
    record = {"number": trial.number, "state": trial.state.name, "experiment": trial.user_attrs.get("experiment"),
              "values": {path: round(v, 10) if isinstance(v, float) else v for path, v in trial.params.items()}}
    if trial.state == TrialState.COMPLETE:
        record |= {"model": trial.user_attrs["model"], "quantization": trial.user_attrs["quantization"],
                   "accuracy": trial.user_attrs["accuracy"], "fits": trial.user_attrs["fits"],
                   **{figure: None if value >= UNMEASURABLE else value
                      for figure, value in zip(results.FIGURES, trial.values)}}
    return record


def summary(the_study, budget_name: str, budget: dict, models: list, mattered: dict, seconds: float) -> dict:
    """search/<budget>.json: the budget, every trial of the study, the pick with its `dvc exp apply` line, the
    params' importance and this run's wall time."""
    records = [trial_record(t) for t in the_study.get_trials(deepcopy=False)]
    chosen = results.best(records, budget["prefer"])
    return {"budget": budget_name, "limits": limits(budget), "prefer": budget["prefer"], "models": models,
            "trials": records, "pick": chosen, "apply": f"dvc exp apply {chosen['experiment']}" if chosen else None,
            "importance": mattered, "seconds": round(seconds, 1)}
