"""Compression methods, one plugin module each: a `methods.base.Method` subclass per params section it serves, with
that section's rules, found by scanning this package (a new method is its module, its params section, its tests)."""
from importlib import import_module
from pkgutil import iter_modules


def _discover() -> dict:
    """{params section: Method subclass} from the `METHODS` of every public module in this package (a leading _
    marks a method's TensorFlow helpers, imported when it runs)."""
    found = {}
    for module in iter_modules(__path__):
        if not module.name.startswith("_"):
            found.update(getattr(import_module(f"{__name__}.{module.name}"), "METHODS", {}))
    return found


METHODS = _discover()
RULES = {name: method.rules for name, method in METHODS.items()}  # each section's rules, for params.load


def create(name: str, settings: dict):
    """The method of params section `name` (a key of METHODS), configured by its validated settings."""
    method = METHODS[name](settings)
    method.name = name
    return method
