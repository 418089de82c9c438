"""compress: apply one compression method to the model in SOURCE_DIR, fine-tune it, save it in MODEL_DIR.

METHOD is a key of edgecompress.methods.METHODS and the params section that configures it. OPTIONS:
variant=NAME picks one entry of that section's `variants` (cluster.variants.<NAME>); teacher=DIR gives a
distilling method its frozen teacher model.
"""
from pathlib import Path

from edgecompress.core import params
from edgecompress.core.errors import UserError, run_stage

OPTIONS = ("variant", "teacher")


def parse(options) -> dict:
    """{name: value} of `name=value` options; anything else is a UserError listing what is allowed."""
    parsed = dict(option.split("=", 1) for option in options if "=" in option)
    if len(parsed) != len(options) or not parsed.keys() <= set(OPTIONS):
        raise UserError(f"compress: options {' '.join(options)!r} are not allowed; expected any of "
                        + ", ".join(f"{name}=..." for name in OPTIONS))
    return parsed


def main(method, data_dir, source_dir, model_dir, *options):
    chosen = parse(options)
    p = params.load("seed", "train", method)
    settings = params.variant(p[method], method, chosen["variant"]) if "variant" in chosen else p[method]
    from edgecompress import methods  # TensorFlow loads only once params are valid
    from edgecompress.train import runs

    if method not in methods.METHODS:
        raise UserError(f"unknown method {method!r}; known: {', '.join(methods.METHODS)}")
    compression = methods.create(method, settings)
    strategy = runs.strategy(p["train"], f"compress {Path(model_dir).name}", compression.undistributable)
    if "teacher" in chosen:
        with strategy.scope():
            compression.use_teacher(runs.load(chosen["teacher"])[0], Path(chosen["teacher"]).name)
    runs.compress(compression, source_dir, model_dir, data_dir, p["train"], p["seed"], strategy)


if __name__ == "__main__":
    run_stage(main, loads_tensorflow=True)
