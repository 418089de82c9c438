"""Quantization-aware training with TFMOT, plain or preserving what pruning / clustering made (PQAT, CQAT, PCQAT)."""
from edgecompress.methods.base import Method

CARRIED = ("pruned_layers", "clustered_layers", "clusters", "unsupported_layers")  # still true after QAT


class QuantizationAware(Method):
    """QAT of the upstream model keeping what `preserve` names; the result converts to int8 alone."""

    undistributable = "TFMOT's quantization-aware training does not support tf.distribute yet (on its roadmap)"
    preserve = "none"

    def apply(self, model, upstream, steps):
        from edgecompress.methods._qat_schemes import quantize

        self.upstream = upstream
        return quantize(model, self.preserve)

    def properties(self):
        return {"quantization_aware": True, **{key: getattr(self.upstream, key) for key in CARRIED}}


METHODS = {"qat": QuantizationAware}  # the preserving variants, one params section each:
METHODS.update({name: type(name.upper(), (QuantizationAware,), {"preserve": preserve})
                for name, preserve in (("pqat", "sparsity"), ("cqat", "clusters"),
                                       ("pcqat", "clusters_and_sparsity"))})
