"""compress: apply one compression method to the model in SOURCE_DIR, fine-tune it, save it in MODEL_DIR.

METHOD is a module of edgecompress.methods and the params section that configures it; VARIANT picks one
entry of that section's `variants` (cluster.variants.<VARIANT>).
"""
from edgecompress import params
from edgecompress.errors import UserError, run_stage


def main(method, data_dir, source_dir, model_dir, variant=None):
    p = params.load("seed", "train", method)
    settings = params.variant(p[method], method, variant) if variant else p[method]
    from edgecompress import methods, runs  # TensorFlow loads only once params are valid

    if method not in methods.METHODS:
        raise UserError(f"unknown method {method!r}; known: {', '.join(methods.METHODS)}")
    runs.compress(methods.create(method, settings), source_dir, model_dir, data_dir, p["train"], p["seed"])


if __name__ == "__main__":
    run_stage(main)
