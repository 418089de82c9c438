"""Load params.yaml and validate the sections a stage reads, before the stage does any work.

Every key has a rule; a wrong value raises UserError naming the key, the value and what is allowed.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from edgecompress.core.errors import UserError
from edgecompress.core.names import (ARCHITECTURES, BUDGET_LIMITS, INPUT_RANGES, MIN_IMAGE_SIZE, NO_FILE, OPTIMIZERS,
                                     OWN_MODEL, PREFERENCES, QUANTIZATIONS, STRATEGIES)


@dataclass(frozen=True)
class Rule:
    describe: str
    check: callable

    def __call__(self, key, value):
        if not self.check(value):
            raise UserError(f"params: {key} = {value!r} is not allowed; expected {self.describe}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def integer(low=None, high=None):
    bounds = f"an integer{f' >= {low}' if low is not None else ''}{f' <= {high}' if high is not None else ''}"
    return Rule(bounds, lambda v: _is_int(v) and (low is None or v >= low) and (high is None or v <= high))


def number(low, high, low_open=False, high_open=False):
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    return Rule(
        f"a number in {lo}{low}, {high}{hi}",
        lambda v: _is_number(v)
        and (v > low if low_open else v >= low)
        and (v < high if high_open else v <= high),
    )


def one_of(*allowed):
    return Rule(f"one of {', '.join(map(str, allowed))}", lambda v: v in allowed)


def list_of(*allowed):
    return Rule(
        f"a non-empty list of distinct names from {', '.join(allowed)}",
        lambda v: isinstance(v, list) and v and len(set(v)) == len(v) and all(x in allowed for x in v),
    )


BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))
PATH = Rule("a non-empty path", lambda v: isinstance(v, str) and v.strip() != "")
NAMES = Rule("a list of layer names", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))


@dataclass(frozen=True)
class MappingOf:
    """A non-empty mapping from names (letters, digits, _) to sections that all follow `schema`."""
    schema: dict


@dataclass(frozen=True)
class Omittable:
    """A key that may be left out."""
    rule: object



def fine_tuning(**extra):
    """The keys every section that trains has (epochs, learning rate), plus its own."""
    return {"epochs": integer(1), "learning_rate": number(0, 1, low_open=True), **extra}


SCHEMA = {
    "seed": integer(0),
    "data": {
        "source": one_of("digits", "folder", "npz"),
        "path": PATH,
        "test_path": PATH,
        "image_size": integer(MIN_IMAGE_SIZE, 1024),
        "channels": one_of(1, 3),
        "limit_per_class": integer(0),
        "skip_corrupt": BOOLEAN,
        "val_fraction": number(0, 1, low_open=True, high_open=True),
        "test_fraction": number(0, 1, low_open=True, high_open=True),
        "shard_mb": number(0, 10000, low_open=True),
    },
    "train": {
        "architecture": one_of(*ARCHITECTURES, OWN_MODEL),
        "model_file": PATH,
        "weights": PATH,
        "trust_model_code": BOOLEAN,
        "input_range": one_of(*INPUT_RANGES),
        "width": number(0, 4, low_open=True),
        "optimizer": one_of(*OPTIMIZERS),
        "learning_rate": number(0, 1, low_open=True),
        "schedule": one_of("constant", "cosine"),
        "epochs": integer(0),
        "batch_size": integer(1),
        "keep_best": BOOLEAN,
        "distribute": one_of(*STRATEGIES),
        "threads": integer(0),
        "mixed_precision": BOOLEAN,
        "augment": {
            "flip": one_of("none", "horizontal", "vertical", "horizontal_and_vertical"),
            "rotation": number(0, 0.5),
        },
    },
    "models": lambda key, value: graph_faults(value),
    "distill": fine_tuning(
        student=one_of(*ARCHITECTURES),
        width=number(0, 4, low_open=True),
        input_size=integer(MIN_IMAGE_SIZE, 1024),
        alpha=number(0, 1),
        temperature=number(0, 1000, low_open=True),
    ),
    "distill_attention": {
        "beta": number(0, float("inf")),
        "kd_weight": number(0, float("inf")),
    },
    "convert": {
        "quantizations": list_of(*QUANTIZATIONS),
        "representative_samples": integer(1),
    },
    "evaluate": {
        "device": Rule("local, or an ssh destination (user@host or a Host alias from ~/.ssh/config)",
                       lambda v: isinstance(v, str) and v.strip() == v and v != "" and not v.startswith("-")),
        "python": PATH,
        "ssh_options": Rule("a list of ssh options such as [-F, ssh_config] or [-o, Port=2222]",
                            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
        "connect_timeout": integer(1, 3600),
        "run_timeout": integer(1),
        "threads": integer(1, 64),
        "warmup": integer(0),
        "runs": integer(1),
    },
    "report": {
        "budgets": MappingOf({
            **{key: Omittable(number(0, float("inf"), low_open=True)) for key in BUDGET_LIMITS},
            "prefer": one_of(*PREFERENCES),
        }),
        "highlight": Rule("a name", lambda v: isinstance(v, str)),
    },
}


def validate(values, schema, prefix=""):
    """Check `values` against `schema`; unknown and missing keys are errors too (typos stay visible)."""
    if not isinstance(values, dict):
        raise UserError(f"params: {prefix.rstrip('.')} must be a mapping, got {values!r}")
    for key in values.keys() - schema.keys():
        raise UserError(f"params: {prefix}{key} is not a known key; known: {', '.join(sorted(schema))}")
    for key, rule in schema.items():
        if key not in values:
            if isinstance(rule, Omittable):
                continue
            raise UserError(f"params: {prefix}{key} is missing")
        rule = rule.rule if isinstance(rule, Omittable) else rule
        if isinstance(rule, dict):
            validate(values[key], rule, f"{prefix}{key}.")
        elif isinstance(rule, MappingOf):
            _validate_mapping(values[key], rule.schema, f"{prefix}{key}")
        else:
            rule(f"{prefix}{key}", values[key])


def _validate_mapping(values, schema, key):
    if not isinstance(values, dict) or not values:
        raise UserError(f"params: {key} must be a non-empty mapping of names to settings, got {values!r}")
    for name, section in values.items():
        if not re.fullmatch(r"[A-Za-z0-9_]+", str(name)):
            raise UserError(f"params: {key}.{name} is not allowed; names use letters, digits and _ only")
        validate(section, schema, f"{key}.{name}.")


def _check_across_keys(picked: dict) -> None:
    """Rules that relate two keys of a section."""
    train = picked.get("train")
    if train and train["architecture"] == OWN_MODEL:
        if train["model_file"] == NO_FILE:
            raise UserError(f"params: train.model_file = {NO_FILE!r} (the placeholder) is not allowed with "
                            f"train.architecture {OWN_MODEL}; expected your .keras file, .h5 file or SavedModel folder")
        if train["weights"] != NO_FILE:
            raise UserError(f"params: train.weights = {train['weights']!r} is not allowed with train.architecture "
                            f"{OWN_MODEL}; expected {NO_FILE!r}: the model file carries its own weights")
    elif train and train["epochs"] == 0:
        raise UserError(f"params: train.epochs = 0 is not allowed with train.architecture {train['architecture']}; "
                        f"expected at least 1 (0 takes a train.model_file as it is)")
    report = picked.get("report")
    if report and report["highlight"] not in report["budgets"]:
        raise UserError(f"params: report.highlight = {report['highlight']!r} is not allowed; expected one of the "
                        f"budgets: {', '.join(report['budgets'])}")


UPSTREAM = {"baseline": (), "student_distilled": ("baseline",), "student_attention": ("baseline",),
            "student_scratch": ()}  # the models the training stages make, and the models each one learns from
ENTRY_KEYS = {"method", "from", "teacher", "with"}


def graph_faults(models) -> None:
    """Check the `models` graph: each entry names a method, a model it starts from (no cycles) and optionally a
    teacher upstream of it; `with` is a mapping (its keys are checked against the method's section by `settings`)."""
    if not isinstance(models, dict):
        raise UserError(f"params: models must be a mapping of model names to entries, got {models!r}")
    upstream = dict(UPSTREAM)
    for name, entry in models.items():
        key = f"models.{name}"
        if not re.fullmatch(r"[A-Za-z0-9_]+", str(name)) or name in UPSTREAM:
            raise UserError(f"params: {key} is not allowed; names use letters, digits and _ and are none of "
                            f"{', '.join(UPSTREAM)}")
        if not isinstance(entry, dict) or not {"method", "from"} <= entry.keys() <= ENTRY_KEYS:
            raise UserError(f"params: {key} = {entry!r} is not allowed; expected {{method: ..., from: ...}} with "
                            "optional teacher and with")
        if not isinstance(entry.get("with", {}), dict):
            raise UserError(f"params: {key}.with = {entry['with']!r} is not allowed; expected a mapping of its "
                            f"method's settings ({entry['method']}.*)")
        upstream[name] = (entry["from"],)
    for name, entry in models.items():
        if entry["from"] not in upstream:
            raise UserError(f"params: models.{name}.from = {entry['from']!r} is not allowed; expected a model: "
                            f"{', '.join(upstream)}")
    for name, entry in models.items():
        ancestors = lineage(upstream, name)
        if name in ancestors:
            raise UserError(f"params: models.{name}.from = {entry['from']!r} is not allowed: the chain comes back "
                            f"to {name} ({' <- '.join([name, *ancestors[:ancestors.index(name) + 1]])})")
        if "teacher" in entry and entry["teacher"] not in ancestors:
            raise UserError(f"params: models.{name}.teacher = {entry['teacher']!r} is not allowed; expected a model "
                            f"it comes from: {', '.join(ancestors)}")


def lineage(upstream: dict, name: str) -> list:
    """Every model `name` comes from, nearest first, stopping where the chain comes back to one already seen."""
    found, frontier = [], list(upstream[name])
    while frontier:
        model = frontier.pop(0)
        if model in found:
            continue
        found.append(model)
        frontier += upstream.get(model, ())
    return found


def settings(section: dict, schema: dict, name: str, entry: dict) -> dict:
    """The settings of model `name`: its method's (validated) section under the entry's `with` overrides, each
    checked against the section's `schema` under its own key."""
    method = entry["method"]
    overrides = entry.get("with", {})
    for key in overrides.keys() - schema.keys():
        raise UserError(f"params: models.{name}.with.{key} is not a setting of {method}; known: "
                        f"{', '.join(sorted(schema))}")
    validate(overrides, {key: schema[key] for key in overrides}, f"models.{name}.with.")
    return {**section, **overrides}


def load(*sections, path="params.yaml", schemas=None):
    """Read `path` and return the named top-level sections, each validated, as a dict; `schemas` adds the rules
    of sections that other modules define (a method's)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params: {path} not found")
    try:
        everything = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"params: {path} is not valid YAML: {err}") from None
    picked = {}
    for section in sections:
        if section not in everything:
            raise UserError(f"params: section {section!r} is missing from {path}")
        picked[section] = everything[section]
    rules = {**SCHEMA, **(schemas or {})}
    unknown = [s for s in sections if s not in rules]
    if unknown:
        raise UserError(f"params: no rules for section {unknown[0]!r}; known: {', '.join(sorted(rules))}")
    validate(picked, {s: rules[s] for s in sections})
    _check_across_keys(picked)
    return picked
