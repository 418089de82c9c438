"""Magnitude pruning with TFMOT: wrap the chosen layers, fine-tune along the schedule, strip the wrappers."""
from edgecompress.core.errors import UserError
from edgecompress.core.params import NAMES, fine_tuning, integer, is_int, number, one_of, rule
from edgecompress.methods.base import Method


def sparsity():
    """TFMOT's sparsity API (tfmot.sparsity.keras), imported when a method runs."""
    from edgecompress.core.backend import tfmot

    return tfmot.sparsity.keras


def prunes(layer) -> bool:
    """Whether TFMOT prunes weights of `layer` (Conv2D, Dense, SeparableConv2D's pointwise kernel, ...)."""
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    return bool(PruneRegistry._LAYERS_WEIGHTS_MAP.get(layer.__class__))


def prunable_layers(model, skip: list) -> tuple:
    """(the layers of `model` whose weights TFMOT prunes, but `skip`; the layers with weights it cannot wrap)."""
    from edgecompress.train.models import select_layers
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    return select_layers(model, skip, prunes, PruneRegistry.supports)


def last_step(begin_step: int, end_step, frequency: int, total_steps: int) -> int:
    """The step at which pruning reaches its final sparsity; "auto" is the last update within `total_steps`.

    TFMOT updates the masks at steps begin_step + k * frequency (steps count from 0), so "auto" rounds down
    onto that grid; an explicit end_step must lie within fine-tuning or the final sparsity is never reached.
    """
    if begin_step >= total_steps:
        raise UserError(f"params: prune.begin_step = {begin_step} is not allowed; "
                        f"fine-tuning has only {total_steps} steps (0 to {total_steps - 1})")
    if end_step == "auto":
        return begin_step + (total_steps - 1 - begin_step) // frequency * frequency
    if not begin_step < end_step < total_steps:
        raise UserError(f"params: prune.end_step = {end_step} is not allowed; expected auto or a step after "
                        f"begin_step ({begin_step}) and before the end of fine-tuning ({total_steps} steps)")
    return end_step


def schedule(name: str, initial_sparsity: float, final_sparsity: float, begin_step: int, end_step,
             frequency: int, total_steps: int):
    """`polynomial_decay` (initial -> final sparsity from begin to end step) or `constant_sparsity` (final)."""
    end = last_step(begin_step, end_step, frequency, total_steps)
    if name == "polynomial_decay":
        return sparsity().PolynomialDecay(initial_sparsity, final_sparsity, begin_step, end, frequency=frequency)
    return sparsity().ConstantSparsity(final_sparsity, begin_step, end_step=end, frequency=frequency)


SPARSITY = number(0, 1, high_open=True)


class Prune(Method):
    """`prune_low_magnitude` on every Conv2D / Dense layer but prune.skip_layers, as prune.schedule says."""

    rules = fine_tuning(
        schedule=one_of("polynomial_decay", "constant_sparsity"),
        initial_sparsity=SPARSITY,
        final_sparsity=SPARSITY,
        begin_step=integer(0),
        end_step=rule("auto (the last pruning step of fine-tuning) or an integer >= 1",
                      lambda v: v == "auto" or (is_int(v) and v >= 1)),
        frequency=integer(1),
        skip_layers=NAMES,
    )

    @classmethod
    def check(cls, settings, key):
        if settings["initial_sparsity"] > settings["final_sparsity"]:
            raise UserError(f"params: {key('initial_sparsity')} = {settings['initial_sparsity']} is not allowed; "
                            f"expected at most {key('final_sparsity')} ({settings['final_sparsity']})")

    def apply(self, model, upstream, steps):
        from edgecompress.train.models import wrap_layers

        s = self.settings
        self.layers, self.unsupported = prunable_layers(model, s["skip_layers"])
        pruning_schedule = schedule(s["schedule"], s["initial_sparsity"], s["final_sparsity"], s["begin_step"],
                                    s["end_step"], s["frequency"], steps)
        return wrap_layers(model, self.layers,
                           lambda layer: sparsity().prune_low_magnitude(layer, pruning_schedule=pruning_schedule))

    def callbacks(self):
        return [sparsity().UpdatePruningStep()]

    def finish(self, model, train_images):
        """Strip the wrappers, then re-estimate BatchNorm statistics, which lag behind the last mask updates."""
        from edgecompress.train.training import reestimate_batch_norm

        pruned = sparsity().strip_pruning(model)
        reestimate_batch_norm(pruned, train_images)
        return pruned

    def properties(self):
        return {"pruned_layers": self.layers, "unsupported_layers": self.unsupported}


METHODS = {"prune": Prune}
