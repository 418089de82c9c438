"""Load params.yaml and validate the sections a stage reads, before the stage does any work.

Every key has a rule; a wrong value raises UserError naming the key, the value and what is allowed.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from edgecompress.core.errors import UserError
from edgecompress.core.names import (ARCHITECTURES, BUDGET_LIMITS, CENTROID_INITS, FILTER_CRITERIA, INPUT_RANGES,
                                MIN_IMAGE_SIZE, NO_FILE, OPTIMIZERS, OWN_MODEL, PREFERENCES, QUANTIZATIONS,
                                STRATEGIES)


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
SPARSITY = number(0, 1, high_open=True)
CLUSTERS = integer(2, 65536)
INITS = one_of(*CENTROID_INITS)
SHARE_OR_NULL = Rule("null or a number in (0, 1]", lambda v: v is None or (_is_number(v) and 0 < v <= 1))
END_STEP = Rule("auto (the last pruning step of fine-tuning) or an integer >= 1",
                lambda v: v == "auto" or (_is_int(v) and v >= 1))


@dataclass(frozen=True)
class MappingOf:
    """A non-empty mapping from names (letters, digits, _) to sections that all follow `schema`."""
    schema: dict


@dataclass(frozen=True)
class Omittable:
    """A key that may be left out."""
    rule: object


def fine_tuning(**extra):
    """The keys every fine-tuning section has (epochs, learning rate), plus its own."""
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
    "prune": fine_tuning(
        schedule=one_of("polynomial_decay", "constant_sparsity"),
        initial_sparsity=SPARSITY,
        final_sparsity=SPARSITY,
        begin_step=integer(0),
        end_step=END_STEP,
        frequency=integer(1),
        skip_layers=NAMES,
    ),
    "cluster": fine_tuning(
        skip_layers=NAMES,
        variants=MappingOf({"clusters": CLUSTERS, "init": INITS}),
    ),
    "qat": fine_tuning(),
    "pqat": fine_tuning(),
    "cqat": fine_tuning(variant=Rule("a name", lambda v: isinstance(v, str))),
    "cluster_sparse": fine_tuning(clusters=CLUSTERS, init=INITS),
    "pcqat": fine_tuning(),
    "filter_prune": fine_tuning(
        criterion=one_of(*FILTER_CRITERIA),
        ratio=number(0, 1, low_open=True, high_open=True),
        steps=integer(1),
        skip_layers=NAMES,
    ),
    "filter_prune_kd": fine_tuning(
        alpha=Rule("auto (paper 004's formula 7 from probe runs) or a number in [0, 1]",
                   lambda v: v == "auto" or (_is_number(v) and 0 <= v <= 1)),
        probe_epochs=integer(1),
        temperature=number(0, 1000, low_open=True),
    ),
    "lowrank": fine_tuning(
        energy=SHARE_OR_NULL,
        rank_ratio=SHARE_OR_NULL,
        skip_layers=NAMES,
    ),
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
    lowrank = picked.get("lowrank")
    if lowrank and (lowrank["energy"] is None) == (lowrank["rank_ratio"] is None):
        raise UserError(f"params: lowrank.energy = {lowrank['energy']!r} and lowrank.rank_ratio = "
                        f"{lowrank['rank_ratio']!r} are not allowed together; expected exactly one of them set, the "
                        "other null")
    report = picked.get("report")
    if report and report["highlight"] not in report["budgets"]:
        raise UserError(f"params: report.highlight = {report['highlight']!r} is not allowed; expected one of the "
                        f"budgets: {', '.join(report['budgets'])}")


def variant(section: dict, key: str, name: str) -> dict:
    """The settings of one named variant of `section` (cluster.variants.<name>) merged over the shared ones."""
    if name not in section["variants"]:
        raise UserError(f"params: {key}.variants has no {name!r}; variants: {', '.join(section['variants'])}")
    shared = {k: v for k, v in section.items() if k != "variants"}
    return {**shared, **section["variants"][name]}


def load(*sections, path="params.yaml"):
    """Read `path` and return the named top-level sections, each validated, as a dict."""
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
    validate(picked, {s: SCHEMA[s] for s in sections})
    _check_across_keys(picked)
    return picked
