"""Low-rank factorization (paper 002): split each Dense and Conv2D kernel by its truncated SVD, then fine-tune.

The rank of each layer is the fewest singular values that keep lowrank.energy of the squared ones, or
lowrank.rank_ratio of the full rank; a layer is split only where the two thinner layers have fewer parameters.
"""
from edgecompress.methods.factorization import choose_ranks, factorizable, factorize
from edgecompress.methods.base import Method
from edgecompress.train.models import select_layers


def has_kernel(layer) -> bool:
    """Whether `layer` holds a kernel of any kind (depthwise, pointwise, a nested model's)."""
    return any("kernel" in weight.name for weight in layer.weights)


class LowRank(Method):
    """Factorize every Dense and Conv2D layer but lowrank.skip_layers at the rank the settings choose."""

    def apply(self, model, upstream, steps):
        s = self.settings
        names, self.unsupported = select_layers(model, s["skip_layers"], "lowrank.skip_layers", factorizable,
                                                lambda layer: factorizable(layer) or not has_kernel(layer))
        self.choices = choose_ranks(model, names, s["energy"], s["rank_ratio"])
        return factorize(model, {c["layer"]: c["rank"] for c in self.choices if c["factorized"]})

    def facts(self):
        return {"factorized_layers": self.choices, "unsupported_layers": self.unsupported}
