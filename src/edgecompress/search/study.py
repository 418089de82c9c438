"""A budget's search as an Optuna study: each trial a DVC experiment (search.trials), scored on the model that the
budget picks among its measured files (report.selection.recommend), with the budget's limits as constraints."""
import time
from pathlib import Path
from urllib.parse import urlsplit

import optuna
from optuna.importance import FanovaImportanceEvaluator
from optuna.samplers import TPESampler
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from edgecompress.core.errors import UserError
from edgecompress.report import rows
from edgecompress.report.selection import limits, measured, recommend, row_id
from edgecompress.search import results, space, trials

# what a trial minimizes, each as a budget key's measure: accuracy lost against the reference, gzip size, p50 latency
OBJECTIVES = ("max_loss_points", "max_gzip_kb", "max_latency_p50_ms")
UNMEASURABLE = 1e9  # a constraint's value where the pick has no figure for it (no TFLM run): far over any limit
PAIRED = ("flips_lost", "flips_gained", "mcnemar_p")  # the pick against the reference on the same images
HEARTBEAT_S = 60  # a trial whose worker stops beating for GRACE_S (killed, crashed) fails and is tried again once
GRACE_S = 300
CONNECT_TRIES = 3  # workers that start together on a new database race to create its tables: the loser tries again


def shown(url: str) -> str:
    """A storage URL without its user and password."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()


def storage(url: str) -> RDBStorage:
    """Optuna's RDB storage at `url` (sqlite:///FILE, postgresql://...), with heartbeats, so that a worker that dies
    leaves its trial to be retried; one line naming the URL (without its password) where it cannot be used."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(CONNECT_TRIES):
        try:
            return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=HEARTBEAT_S,
                              grace_period=GRACE_S,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
        except Exception as err:  # SQLAlchemy's and the drivers' errors have no common base worth naming
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            time.sleep(attempt + 1 if attempt + 1 < CONNECT_TRIES else 0)
    raise UserError(f"search: the storage {shown(url)} cannot be used ({reason}); expected sqlite:///FILE or a "
                    "reachable postgresql://USER:PASSWORD@HOST:PORT/DATABASE")


def pick(metrics_by_model: dict, budget: dict, models: list) -> dict:
    """The row that `budget` picks among the files of a trial's `models` (or the closest miss), with "fits"; the
    reference's metrics, among `metrics_by_model`, only anchor the accuracy lost."""
    table = [dict(row, images=metrics_by_model[row["model"]]["protocol"]["images"])
             for row in rows(metrics_by_model, {}) if row["model"] in models]
    chosen = recommend(table, budget)
    wanted = (chosen["model"], chosen["quantization"]) if chosen["fits"] else row_id(chosen["closest"])
    return dict(next(r for r in table if row_id(r) == wanted), fits=chosen["fits"])


def constraints(row: dict, budget: dict) -> dict:
    """Each limit of `budget` as Optuna's constraint (at most 0 where met): the row's measure less the limit."""
    return {key: min(measured(row, key), UNMEASURABLE) - limit for key, limit in limits(budget).items()}


def objective(budget_name: str, budget: dict, models: list, distributions: dict, log):
    """The function Optuna calls per trial: its values run as experiment <budget>-<number>; returns OBJECTIVES of
    the budget's pick and keeps what the report needs as the trial's user attributes."""
    def run(trial) -> tuple:
        values = space.sample(trial, distributions)
        name = f"{budget_name}-{trial.number}"
        ref = trials.run(name, values, models, log)
        row = pick(trials.measurements(ref, models), budget, models)
        for key, value in {"experiment": name, "model": row["model"], "quantization": row["quantization"],
                           "fits": row["fits"], "accuracy": row["accuracy"], "images": row["images"],
                           **{key: row[key] for key in PAIRED}}.items():
            trial.set_user_attr(key, value)
        for key, value in constraints(row, budget).items():
            trial.set_constraint(key, value)
        return tuple(measured(row, key) for key in OBJECTIVES)
    return run


def study(storage_url: str, budget_name: str, seed: int, startup_trials: int, fingerprint: str, first: dict):
    """The study named after the budget in the storage: created with `first` ({param: value}, the committed
    configuration) as its first trial, or loaded to resume, refused where it was made for another space
    (`fingerprint`). Its TPE sampler weighs the constraints each trial sets; seeded with `seed` plus the trials
    already there, so that a resumed run or a second worker does not draw the first run's trials again."""
    where = storage(storage_url)
    try:
        the_study = optuna.create_study(storage=where, study_name=budget_name,
                                        directions=["minimize"] * len(OBJECTIVES))
        the_study.set_user_attr("space", fingerprint)
        the_study.enqueue_trial(first)
    except DuplicatedStudyError:
        the_study = optuna.load_study(storage=where, study_name=budget_name)
        if the_study.user_attrs.get("space") not in (None, fingerprint):
            raise UserError(f"search: the study {budget_name!r} in {shown(storage_url)} was made for another "
                            f"search space; expected the space it holds ({the_study.user_attrs['space']}), or a new "
                            "storage (--storage) for the new space") from None
    the_study.sampler = TPESampler(seed=seed + len(the_study.trials), n_startup_trials=startup_trials,
                                   multivariate=True)
    return the_study


def optimize(the_study, objective_fn, trials_in_all: int, jobs: int) -> None:
    """Run trials, `jobs` at a time, until the study holds `trials_in_all` complete ones (other workers' count), or
    as many failed ones; a queued first trial runs alone (threads would both take it: SQLite has no row locks)."""
    def count(state) -> int:
        return sum(t.state == state for t in the_study.get_trials(deepcopy=False))

    stop = [MaxTrialsCallback(trials_in_all, states=(state,)) for state in (TrialState.COMPLETE, TrialState.FAIL)]
    if count(TrialState.WAITING):
        the_study.optimize(objective_fn, n_trials=1, catch=(RuntimeError,), callbacks=stop)
    if count(TrialState.COMPLETE) < trials_in_all and count(TrialState.FAIL) < trials_in_all:
        the_study.optimize(objective_fn, n_jobs=jobs, catch=(RuntimeError,), callbacks=stop)


def trial_record(trial) -> dict:
    """One trial: its number, state, experiment, values (as params.yaml holds them) and, if complete, the pick's
    figures and whether it meets the budget."""
    record = {"number": trial.number, "state": trial.state.name, "experiment": trial.user_attrs.get("experiment"),
              "values": {path: round(v, 10) if isinstance(v, float) else space.decoded(trial.distributions[path], v)
                         for path, v in trial.params.items()}}
    if trial.state == TrialState.COMPLETE:
        record |= {"seconds": round((trial.datetime_complete - trial.datetime_start).total_seconds(), 1),
                   "model": trial.user_attrs["model"], "quantization": trial.user_attrs["quantization"],
                   "accuracy": trial.user_attrs["accuracy"], "fits": trial.user_attrs["fits"],
                   **{key: trial.user_attrs[key] for key in ("images", *PAIRED)},
                   **dict(zip(results.FIGURES, trial.values))}
    return record


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


def summary(the_study, budget_name: str, budget: dict, models: list, mattered: dict) -> dict:
    """search/<budget>.json: the budget, every trial of the study (with its seconds, start to end, as Optuna
    recorded them), the pick with its `dvc exp apply` line and the params' importance."""
    records = [trial_record(t) for t in the_study.get_trials(deepcopy=False)]
    chosen = results.best(records, budget["prefer"])
    return {"budget": budget_name, "limits": limits(budget), "prefer": budget["prefer"], "models": models,
            "trials": records, "pick": chosen, "apply": f"dvc exp apply {chosen['experiment']}" if chosen else None,
            "importance": mattered}
