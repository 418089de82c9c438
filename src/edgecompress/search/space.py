"""A budget's search space from params.yaml's `search` section: the params a trial varies, as Optuna distributions,
each path checked against params.yaml before any trial runs."""
from typing import NamedTuple

import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from edgecompress.core.errors import UserError
from edgecompress.core.params import UPSTREAM, check, graph_faults, integer, is_int, is_name, is_number
from edgecompress.methods import RULES


def as_text(value) -> str:
    """A value as one line of YAML: what `dvc exp run -S key=value` parses back (a whole model entry too)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...")


def at(values: dict, path: str):
    """The value at a dotted `path` of params.yaml's `values`; KeyError where there is none."""
    for key in path.split("."):
        if not isinstance(values, dict) or key not in values:
            raise KeyError(path)
        values = values[key]
    return values


def is_entry(path: str) -> bool:
    """Whether a searched param is a whole models entry, `models.<name>`."""
    return path.count(".") == 1 and path.startswith("models.")


def _known_methods(entries, whose: str) -> None:
    unknown = {entry["method"] for entry in entries} - RULES.keys()
    if unknown:
        raise UserError(f"search: {whose} {', '.join(sorted(unknown))}, which is not a method; methods: "
                        f"{', '.join(RULES)}")


def standing(values: dict, declared) -> list:
    """The models whose stages every trial starts from in the workspace: the space's models that params.yaml holds,
    and what each whole entry it adds comes from (`from`, `teacher`)."""
    added = [yaml.safe_load(choice) for path, dist in declared.distributions.items() if is_entry(path)
             for choice in dist.choices]
    wanted = [*declared.models, *(entry[key] for entry in added for key in ("from", "teacher") if key in entry)]
    return [m for m in dict.fromkeys(wanted) if m in UPSTREAM or m in values["models"]]


def check_path(values: dict, path: str) -> None:
    """A searchable param: a key of params.yaml, `models.<name>.with.<setting>` of an entry's method, or
    `models.<name>` (a whole entry, which may be new)."""
    parts = path.split(".")
    models = values.get("models") or {}
    if is_entry(path) and is_name(parts[1]) and parts[1] not in UPSTREAM:
        return
    if parts[0] == "models" and len(parts) == 4 and parts[2] == "with" and parts[1] in models:
        known = RULES[models[parts[1]]["method"]].model_fields  # the graph is valid: params.graph_faults
        if parts[3] in known:
            return
        raise UserError(f"search: {path} is not allowed; {parts[3]!r} is not a setting of "
                        f"{models[parts[1]]['method']}; known: {', '.join(sorted(known))}")
    try:
        at(values, path)
    except KeyError:
        raise UserError(f"search: {path} is not a param of params.yaml; expected a key such as "
                        f"prune.final_sparsity, models.<name>.with.<setting> or models.<name>") from None


def distribution(path: str, spec):
    """[low, high] or [low, high, step] (integers where all are) or {choices: [...]}, as an Optuna distribution;
    choices are kept as their YAML text (as_text), so that a whole model entry is one Optuna can store."""
    if isinstance(spec, dict) and set(spec) == {"choices"} and isinstance(spec["choices"], list) and spec["choices"]:
        choices = [as_text(choice) for choice in spec["choices"]]
        if len(set(choices)) < len(choices):
            raise UserError(f"search: {path}.choices = {spec['choices']!r} is not allowed; expected distinct values")
        return CategoricalDistribution(choices)
    if isinstance(spec, list) and len(spec) in (2, 3) and all(is_number(v) for v in spec):
        low, high, *step = spec
        if not low < high or (step and not 0 < step[0] <= high - low):
            raise UserError(f"search: {path} = {spec!r} is not allowed; expected a range [low, high] with low < high "
                            "and an optional step in (0, high - low]")
        if all(map(is_int, spec)):
            return IntDistribution(low, high, step=step[0] if step else 1)
        return FloatDistribution(low, high, step=step[0] if step else None)
    raise UserError(f"search: {path} = {spec!r} is not allowed; expected a range [low, high] or [low, high, step], "
                    "or {choices: [...]}")


def current(values: dict, distributions: dict) -> dict:
    """{param path: its value in params.yaml (a `with` setting: its method's section's)} for each param whose value
    lies in its distribution: the committed configuration, which a new study measures first."""
    found = {}
    for path, dist in distributions.items():
        parts = path.split(".")
        try:
            value = at(values, path)
        except KeyError:
            if len(parts) != 4:  # a new model entry has no current value
                continue
            value = values.get(values["models"][parts[1]]["method"], {}).get(parts[3])
        text = as_text(value)
        if isinstance(dist, CategoricalDistribution) and text in dist.choices:
            found[path] = text
        elif not isinstance(dist, CategoricalDistribution) and on_grid(dist, value):
            found[path] = value
    return found


def on_grid(dist, value) -> bool:
    """Whether a number lies in a range distribution, on its step's grid if it has one."""
    if not is_number(value) or not dist.low <= value <= dist.high:
        return False
    steps = (value - dist.low) / dist.step if dist.step else 0
    return abs(steps - round(steps)) < 1e-9


def decoded(dist, value):
    """A trial's value as params.yaml holds it: a choice's YAML text read back."""
    return yaml.safe_load(value) if isinstance(dist, CategoricalDistribution) else value


def sample(trial, distributions: dict) -> dict:
    """{param path: value} that an Optuna `trial` draws from `distributions`, a choice read back from its text."""
    values = {}
    for path, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            values[path] = decoded(dist, trial.suggest_categorical(path, dist.choices))
        elif isinstance(dist, IntDistribution):
            values[path] = trial.suggest_int(path, dist.low, dist.high, step=dist.step)
        else:  # a stepped value rounded to the step's decimals, as it would be written in params.yaml
            value = trial.suggest_float(path, dist.low, dist.high, step=dist.step)
            values[path] = round(value, 10) if dist.step else value
    return values


class Space(NamedTuple):
    """A budget's search as params.yaml declares it."""
    budget: dict  # its limits and `prefer` (report.budgets)
    models: list  # the models each trial measures
    distributions: dict  # {param path: Optuna distribution}
    trials: int  # search.trials
    startup_trials: int  # search.startup_trials
    fingerprint: str  # the space as written: a study made for another one is refused


def load(values: dict, budget: str) -> Space:
    """The Space of `budget` from the whole params.yaml `values`: its own in search.spaces, else the shared one
    (search.spaces.all)."""
    budgets = (values.get("report") or {}).get("budgets") or {}
    if budget not in budgets:
        raise UserError(f"search: budget {budget!r} is not allowed; expected one of report.budgets: "
                        f"{', '.join(budgets)}")
    section = values.get("search")
    if not isinstance(section, dict) or not {"trials", "startup_trials", "spaces"} <= section.keys():
        raise UserError("search: params.yaml has no search section with trials, startup_trials and spaces")
    check({"trials": integer(1), "startup_trials": integer(0)},
          {key: section[key] for key in ("trials", "startup_trials")}, "search.")
    spaces = section["spaces"] if isinstance(section["spaces"], dict) else {}
    name = budget if budget in spaces else "all"
    space = spaces.get(name)
    if not isinstance(space, dict) or set(space) != {"models", "params"}:
        raise UserError(f"search: search.spaces.{name} = {space!r} is not allowed; expected a space for {budget!r} "
                        f"(or all): {{models: [...], params: {{param: range or choices}}}}")
    key = f"search.spaces.{name}"
    if not isinstance(space["params"], dict) or not space["params"]:
        raise UserError(f"search: {key}.params = {space['params']!r} is not allowed; expected {{param: [low, high] "
                        "or {choices: [...]}}")
    graph_faults(values.get("models"))
    _known_methods(values["models"].values(), "params.yaml's models use")
    entries = {path: path.split(".")[1] for path in space["params"] if is_entry(path)}
    known = [*UPSTREAM, *values["models"], *entries.values()]
    models = space["models"]
    if not isinstance(models, list) or not models or any(m not in known for m in models):
        raise UserError(f"search: {key}.models = {models!r} is not allowed; expected a list of models: "
                        f"{', '.join(known)}")
    for path in space["params"]:
        check_path(values, path)
    distributions = {path: distribution(path, spec) for path, spec in space["params"].items()}
    for path, model in entries.items():  # a whole entry: each choice joins the graph as it would in a trial
        if not isinstance(distributions[path], CategoricalDistribution):
            raise UserError(f"search: {path} = {space['params'][path]!r} is not allowed; expected {{choices: [...]}} "
                            "of whole model entries")
        choices = [yaml.safe_load(choice) for choice in distributions[path].choices]
        for choice in choices:
            graph_faults({**values["models"], model: choice})
        _known_methods(choices, f"{path}'s choices use")
    return Space(budgets[budget], models, distributions, section["trials"], section["startup_trials"], as_text(space))
