"""Load params.yaml and validate the sections a stage reads with pydantic, before the stage does any work.

A section is a pydantic model (`Section`); a method's section is its module's. Every key has a rule; a wrong
value raises UserError naming the key, the value and what is allowed, in one line.
"""
import re
from pathlib import Path
from typing import Annotated, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator, ValidationError, create_model
from pydantic_core import PydanticCustomError

from edgecompress.core.errors import UserError
from edgecompress.core.names import (ARCHITECTURES, INPUT_RANGES, MIN_IMAGE_SIZE, NO_FILE, OPTIMIZERS, OWN_MODEL,
                                     QUANTIZATIONS, STRATEGIES)


def is_name(value) -> bool:
    """Whether `value` can name a model, a budget or a folder: ASCII letters, digits and _."""
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_]+", value) is not None


class Section(BaseModel):
    """A params section: exactly its keys (a typo is an unknown key, not a silent default), each by its rule."""
    model_config = ConfigDict(extra="forbid")


def rule(describe: str, check) -> type:
    """A value that `check` accepts, kept as written; anything else is refused as not `describe`."""
    def accepted(value):
        if not check(value):
            raise PydanticCustomError("rule", describe)
        return value

    return Annotated[object, PlainValidator(accepted)]


def is_int(v) -> bool:
    """An integer, not a bool (YAML's true is Python's 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """An int or float, not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def integer(low=None, high=None):
    bounds = f"an integer{f' >= {low}' if low is not None else ''}{f' <= {high}' if high is not None else ''}"
    return rule(bounds, lambda v: is_int(v) and (low is None or v >= low) and (high is None or v <= high))


def number(low, high, low_open=False, high_open=False):
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    return rule(f"a number in {lo}{low}, {high}{hi}", lambda v: is_number(v) and (v > low if low_open else v >= low)
                and (v < high if high_open else v <= high))


def one_of(*allowed):
    return rule(f"one of {', '.join(map(str, allowed))}", lambda v: v in allowed)


def list_of(*allowed, empty: bool = False):
    return rule(f"a {'' if empty else 'non-empty '}list of distinct names from {', '.join(allowed)}",
                lambda v: isinstance(v, list) and (empty or v) and len(set(v)) == len(v)
                and all(x in allowed for x in v))


def named(section: type) -> type:
    """A non-empty mapping from names (letters, digits, _) to `section`s."""
    def non_empty(values):
        if not values:
            raise PydanticCustomError("rule", "a non-empty mapping of names to settings")
        return values

    name = rule("a name: letters, digits and _ only", is_name)
    return Annotated[dict[name, section], AfterValidator(non_empty)]


BOOLEAN = rule("true or false", lambda v: isinstance(v, bool))
PATH = rule("a non-empty path", lambda v: isinstance(v, str) and v.strip() != "")
NAMES = rule("a list of layer names", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
POSITIVE = number(0, float("inf"), low_open=True)
POINTS = number(0, 100, low_open=True)  # accuracy points: report.class_drop_points, report.damage_points


class Data(Section):
    source: one_of("digits", "folder", "npz")
    path: PATH
    test_path: PATH
    image_size: integer(MIN_IMAGE_SIZE, 1024)
    channels: one_of(1, 3)
    limit_per_class: integer(0)
    skip_corrupt: BOOLEAN
    val_fraction: number(0, 1, low_open=True, high_open=True)
    test_fraction: number(0, 1, low_open=True, high_open=True)
    shard_mb: number(0, 10000, low_open=True)


class Augment(Section):
    flip: one_of("none", "horizontal", "vertical", "horizontal_and_vertical")
    rotation: number(0, 0.5)


UPSTREAM_AUGMENT = "upstream"  # a method fine-tunes with the augmentation its upstream model was trained with


def is_augment(value) -> bool:
    """Whether `value` is a mapping that train.augment would accept."""
    try:
        Augment.model_validate(value)
    except ValidationError:
        return False
    return True


class FineTuning(Section):
    """The keys every section that trains has: its epochs and learning rate."""
    epochs: integer(1)
    learning_rate: number(0, 1, low_open=True)


def fine_tuning(**rules) -> type:
    """The Section of a method that fine-tunes: FineTuning's keys, `rules` ({key: rule}) and an optional `augment`
    (by default the upstream model's own)."""
    augment = rule(f"{UPSTREAM_AUGMENT}, or {{flip: ..., rotation: ...}} as train.augment allows",
                   lambda v: v == UPSTREAM_AUGMENT or is_augment(v))
    return create_model("FineTuning", __base__=FineTuning, augment=(augment, UPSTREAM_AUGMENT),
                        **{key: (kind, ...) for key, kind in rules.items()})


class Train(Section):
    architecture: one_of(*ARCHITECTURES, OWN_MODEL)
    model_file: PATH
    weights: PATH
    trust_model_code: BOOLEAN
    input_range: one_of(*INPUT_RANGES)
    width: number(0, 4, low_open=True)
    optimizer: one_of(*OPTIMIZERS)
    learning_rate: number(0, 1, low_open=True)
    schedule: one_of("constant", "cosine")
    epochs: integer(0)
    batch_size: integer(1)
    keep_best: BOOLEAN
    distribute: one_of(*STRATEGIES)
    threads: integer(0)
    mixed_precision: BOOLEAN
    augment: Augment
    model_file_augment: Augment


class Distill(FineTuning):
    student: one_of(*ARCHITECTURES)
    width: number(0, 4, low_open=True)
    input_size: integer(MIN_IMAGE_SIZE, 1024)
    alpha: number(0, 1)
    temperature: number(0, 1000, low_open=True)


class DistillAttention(Section):
    beta: number(0, float("inf"))
    kd_weight: number(0, float("inf"))


class Convert(Section):
    quantizations: list_of(*QUANTIZATIONS)
    representative_samples: integer(1)


class Evaluate(Section):
    device: rule("local, or an ssh destination (user@host or a Host alias from ~/.ssh/config)",
                 lambda v: isinstance(v, str) and v.strip() == v and v != "" and not v.startswith("-"))
    python: PATH
    ssh_options: rule("a list of ssh options such as [-F, ssh_config] or [-o, Port=2222]",
                      lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
    connect_timeout: integer(1, 3600)
    run_timeout: integer(1)
    threads: integer(1, 64)
    warmup: integer(0)
    runs: integer(1)
    micro: list_of(*QUANTIZATIONS, empty=True)


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
        if not is_name(name) or name in UPSTREAM:
            raise UserError(f"params: {key} is not allowed; names use letters, digits and _ and are none of "
                            f"{', '.join(UPSTREAM)}")
        if (not isinstance(entry, dict) or not {"method", "from"} <= entry.keys() <= ENTRY_KEYS
                or not all(is_name(entry[field]) for field in ("method", "from", "teacher") if field in entry)):
            raise UserError(f"params: {key} = {entry!r} is not allowed; expected {{method: NAME, from: NAME}} with "
                            "optional teacher: NAME and with: {setting: value}")
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


SECTIONS = {  # the sections of the core stages; a method's and the report's come from their modules
    "seed": integer(0),
    "data": Data,
    "train": Train,
    "models": Annotated[object, PlainValidator(lambda models: graph_faults(models) or models)],
    "distill": Distill,
    "distill_attention": DistillAttention,
    "convert": Convert,
    "evaluate": Evaluate,
}


def _fault(error: dict, prefix: str, known: list) -> str:
    """The one line that names pydantic's `error`: the key, the value and what is allowed (`known`: the keys beside
    an unknown one)."""
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    key = prefix + ".".join(loc)
    kind = error["type"]
    if kind == "missing":
        return f"params: {key} is missing"
    if kind == "extra_forbidden":
        return f"params: {key} is not a known key; known: {', '.join(sorted(known))}"
    if "[key]" in error["loc"]:
        return f"params: {key} is not allowed; expected {error['msg']}"
    expected = error["msg"] if kind == "rule" else f"a mapping ({error['msg']})"
    return f"params: {key} = {error['input']!r} is not allowed; expected {expected}"


def _section_at(model: type, loc: tuple) -> type:
    """The Section that holds the last key of `loc`, walking down from `model` (a name in a mapping of sections
    stays in their Section)."""
    for part in loc[:-1]:
        if part in model.model_fields:
            model = model.model_fields[part].annotation
            while not (isinstance(model, type) and issubclass(model, BaseModel)):  # Annotated, dict[name, Section]
                model = get_args(model)[0 if get_origin(model) is Annotated else -1]
    return model


def check(rules: dict, values: dict, prefix: str = "") -> None:
    """Validate `values` ({section or key: value}) against `rules` ({the same: a Section or a rule}); the first fault
    is a UserError of one line."""
    model = create_model("Params", __base__=Section, **{key: (rules[key], ...) for key in rules})
    try:
        model.model_validate(values)
    except ValidationError as err:
        first = min(err.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")  # typos first
        raise UserError(_fault(first, prefix, list(_section_at(model, first["loc"]).model_fields))) from None


def rule_of(section: type, key: str) -> type:
    """The rule of one key of a Section, to check a value on its own."""
    field = section.model_fields[key]
    return Annotated[(field.annotation, *field.metadata)]


def settings(section: dict, rules: type, name: str, entry: dict) -> dict:
    """The settings of model `name`: its method's (validated) section under the entry's `with` overrides, each
    checked against the section's `rules` (a Section) under its own key."""
    overrides = entry.get("with", {})
    for key in overrides.keys() - rules.model_fields.keys():
        raise UserError(f"params: models.{name}.with.{key} is not a setting of {entry['method']}; known: "
                        f"{', '.join(sorted(rules.model_fields))}")
    check({key: rule_of(rules, key) for key in overrides}, overrides, f"models.{name}.with.")
    defaults = {key: field.default for key, field in rules.model_fields.items() if not field.is_required()}
    return {**defaults, **section, **overrides}


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


def _read(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"params: {path} not found")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"params: {path} is not valid YAML: {err}") from None


def load_key(section: str, key: str, kind, path="params.yaml"):
    """The value of one key of a section whose other keys a stage does not read, validated by `kind` (a rule)."""
    value = _read(path).get(section, {}).get(key)
    if value is None:
        raise UserError(f"params: {section}.{key} is missing from {path}")
    check({key: kind}, {key: value}, f"{section}.")
    return value


def load(*sections, path="params.yaml", schemas=None):
    """Read `path` and return the named top-level sections, each validated, as written, in a dict; `schemas` adds
    the rules of sections that other modules define (a method's, the report's)."""
    everything = _read(path)
    picked = {}
    for section in sections:
        if section not in everything:
            raise UserError(f"params: section {section!r} is missing from {path}")
        picked[section] = everything[section]
    rules = {**SECTIONS, **(schemas or {})}
    unknown = [s for s in sections if s not in rules]
    if unknown:
        raise UserError(f"params: no rules for section {unknown[0]!r}; known: {', '.join(sorted(rules))}")
    check({s: rules[s] for s in sections}, picked)
    _check_across_keys(picked)
    return picked
