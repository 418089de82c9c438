"""Magnitude pruning with TFMOT: wrap the chosen layers, fine-tune with the schedule, strip the wrappers."""
from edgecompress.backend import tfmot
from edgecompress.errors import UserError
from edgecompress.models import wrap_layers

sparsity = tfmot.sparsity.keras


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
    if initial_sparsity > final_sparsity:
        raise UserError(f"params: prune.initial_sparsity = {initial_sparsity} is not allowed; "
                        f"expected at most final_sparsity ({final_sparsity})")
    end = last_step(begin_step, end_step, frequency, total_steps)
    if name == "polynomial_decay":
        return sparsity.PolynomialDecay(initial_sparsity, final_sparsity, begin_step, end, frequency=frequency)
    return sparsity.ConstantSparsity(final_sparsity, begin_step, end_step=end, frequency=frequency)


def prune(model, layer_names, pruning_schedule):
    """A copy of `model` whose `layer_names` are wrapped for low-magnitude pruning under `pruning_schedule`."""
    return wrap_layers(model, layer_names,
                       lambda layer: sparsity.prune_low_magnitude(layer, pruning_schedule=pruning_schedule))


def callbacks():
    """The callback that advances the pruning step during fit."""
    return [sparsity.UpdatePruningStep()]


def strip(model):
    """The model without pruning wrappers: plain layers holding the pruned (zeroed) kernels."""
    return sparsity.strip_pruning(model)
