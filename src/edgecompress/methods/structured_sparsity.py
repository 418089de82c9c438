"""N:M structured sparsity with TFMOT (`prune_low_magnitude(..., sparsity_m_by_n=(m, n))`): in every n consecutive
input-channel weights of a kernel the m smallest are zero, the pattern that sparse matrix units (2:4 on NVIDIA
Ampere) and sparse inference kernels skip without an index per weight. TFMOT picks the mask once, from the
magnitudes at the first step of fine-tuning, and keeps it; fine-tuning adapts the weights left. Then the wrappers
are stripped and BatchNorm re-estimated as after magnitude pruning."""
from edgecompress.core.params import NAMES, fine_tuning, is_int, rule
from edgecompress.methods.pruning import Prune, prunable_layers, sparsity

PATTERN = rule("[m, n]: m zeros in every n consecutive weights, integers with 0 < m < n",
               lambda v: isinstance(v, list) and len(v) == 2 and all(is_int(x) for x in v) and 0 < v[0] < v[1])


class StructuredSparsity(Prune):
    """`m_by_n` sparsity on every Conv2D / Dense layer but skip_layers."""

    rules = fine_tuning(m_by_n=PATTERN, skip_layers=NAMES)

    @classmethod
    def check(cls, settings, key):
        """No two of its settings relate (Prune's sparsity schedule is not one of them)."""

    def apply(self, model, upstream, steps):
        from edgecompress.train.models import wrap_layers

        s = self.settings
        self.layers, self.unsupported = prunable_layers(model, s["skip_layers"])
        once = sparsity().ConstantSparsity(s["m_by_n"][0] / s["m_by_n"][1], 0)  # TFMOT updates m_by_n masks at step 1
        return wrap_layers(model, self.layers, lambda layer: sparsity().prune_low_magnitude(
            layer, pruning_schedule=once, sparsity_m_by_n=tuple(s["m_by_n"])))


METHODS = {"prune_m_by_n": StructuredSparsity}
