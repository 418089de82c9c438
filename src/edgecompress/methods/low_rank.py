"""Low-rank factorization (paper 002): split each Dense and Conv2D kernel by its truncated SVD, then fine-tune.

The rank of each layer is the fewest singular values that keep lowrank.energy of the squared ones, or
lowrank.rank_ratio of the full rank; a layer is split only where the two thinner layers have fewer parameters.
"""
from edgecompress.core.errors import UserError
from edgecompress.core.params import NAMES, fine_tuning, is_number, rule
from edgecompress.methods.base import Method

SHARE_OR_NULL = rule("null or a number in (0, 1]",
                     lambda v: v is None or (is_number(v) and 0 < v <= 1))


class LowRank(Method):
    """Factorize every Dense and Conv2D layer but lowrank.skip_layers at the rank the settings choose."""

    rules = fine_tuning(energy=SHARE_OR_NULL, rank_ratio=SHARE_OR_NULL, skip_layers=NAMES)

    @classmethod
    def check(cls, settings, key):
        if (settings["energy"] is None) == (settings["rank_ratio"] is None):
            raise UserError(f"params: {key('energy')} = {settings['energy']!r} and {key('rank_ratio')} = "
                            f"{settings['rank_ratio']!r} are not allowed together; expected exactly one of them set, "
                            "the other null")

    def apply(self, model, upstream, steps):
        from edgecompress.methods._factorization import choose_ranks, factorizable, factorize
        from edgecompress.train.models import has_kernel, select_layers

        s = self.settings
        names, self.unsupported = select_layers(model, s["skip_layers"], factorizable,
                                                lambda layer: factorizable(layer) or not has_kernel(layer))
        self.choices = choose_ranks(model, names, s["energy"], s["rank_ratio"])
        return factorize(model, {c["layer"]: c["rank"] for c in self.choices if c["factorized"]})

    def facts(self):
        return {"factorized_layers": self.choices}

    def properties(self):
        return {"unsupported_layers": self.unsupported}

    @staticmethod
    def describe(model: str, record: dict) -> str:
        facts = record["facts"]
        layers = facts["factorized_layers"]
        split = [f for f in layers if f["factorized"]]
        text = f"`{model}`: {len(split)} of {len(layers)} Dense / Conv2D kernels split in two by truncated SVD"
        if split:
            ranks, kept = [f["rank"] for f in split], [f["energy_kept"] for f in split]
            text += (f", ranks {min(ranks)}-{max(ranks)}, keeping {min(kept):.0%}-{max(kept):.0%} of the squared "
                     "singular values")
        whole = [f["layer"] for f in layers if not f["factorized"]]
        return text + (f"; left whole where two layers would not be smaller: {', '.join(whole)}." if whole else ".")


METHODS = {"lowrank": LowRank}
