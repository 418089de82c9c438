"""Compression methods, one plugin module each: a `methods.base.Method` subclass per params section it serves, with
that section's rules, found by scanning this package (a new method is its module, its params section, its tests)."""
from importlib import import_module
from pkgutil import iter_modules

from edgecompress.core import params
from edgecompress.core.errors import UserError


def _discover() -> dict:
    """{params section: Method subclass} from the `METHODS` of every public module in this package (a leading _
    marks a method's TensorFlow helpers, imported when it runs); a section claimed twice is a programming error."""
    found = {}
    for module in iter_modules(__path__):
        if not module.name.startswith("_"):
            for name, method in getattr(import_module(f"{__name__}.{module.name}"), "METHODS", {}).items():
                assert name not in found and name not in params.SECTIONS, f"{module.name}: section {name} is taken"
                found[name] = method
    return found


METHODS = _discover()
RULES = {name: method.rules for name, method in METHODS.items()}  # each section's rules, for params.load


def create(name: str, settings: dict, written=None):
    """The method of params section `name` (a key of METHODS), configured by its validated settings; `written(key)`
    names a setting as the user wrote it (default: Method.written, its section's key)."""
    method = METHODS[name](settings)
    method.name = name
    if written:
        method.written = written
    return method


def configured(models: dict, name: str, path="params.yaml"):
    """The method that makes model `name` (an entry of the validated `models`) from its section in params.yaml
    under the entry's `with`, every rule checked before any work: a fault is a UserError of one line."""
    if name not in models:
        raise UserError(f"params: models has no {name!r}; models: {', '.join(models)}")
    entry = models[name]
    method = entry["method"]
    if method not in METHODS:
        raise UserError(f"params: models.{name}.method = {method!r} is not allowed; expected a method: "
                        f"{', '.join(METHODS)}")
    if METHODS[method].distills and "teacher" not in entry:
        raise UserError(f"params: models.{name} has no teacher; {method} learns from one: add teacher: <a model it "
                        "comes from>")
    if "teacher" in entry and not METHODS[method].distills:
        raise UserError(f"params: models.{name}.teacher = {entry['teacher']!r} is not allowed; {method} learns from "
                        "no teacher")
    section = params.load(method, path=path, schemas=RULES)[method]
    settings = params.settings(section, RULES[method], name, entry)
    overridden = entry.get("with", {})

    def written(key):
        return f"models.{name}.with.{key}" if key in overridden else f"{method}.{key}"

    METHODS[method].check(settings, written)
    return create(method, settings, written)
