"""Block pruning (layer pruning): remove whole residual blocks, so the network runs fewer layers, then distil.

Blocks go one at a time, each time the one without which (and those gone before it) the upstream model's
validation accuracy stays highest (the lesion study of Veit et al. 2016: a residual network degrades smoothly as
single blocks are removed); on a tie the one with more parameters, then the earlier. The smaller network is then
fine-tuned by distillation from the entry's teacher, as paper 004's fused chain does after filter pruning.
"""
from edgecompress.core.errors import UserError
from edgecompress.core.params import fine_tuning, integer, one_of
from edgecompress.methods.knowledge_distillation import DISTILLATION, DistillFineTune, distillation_text


def _parameters(model, block) -> int:
    """The parameters of `block`'s branch: what removing it saves."""
    return sum(model.get_layer(name).count_params() for name in block.branch)


class BlockPrune(DistillFineTune):
    """Remove block_prune.blocks residual blocks by lesion, then fine-tune by distillation."""

    rules = fine_tuning(**DISTILLATION, blocks=integer(1), shortcuts=one_of("identity", "any"))

    def candidates(self, model) -> list:
        """The blocks that block_prune.shortcuts allows removing: identity shortcuts, or any (a projecting block
        becomes its projection)."""
        from edgecompress.methods._block_surgery import residual_blocks

        return [b for b in residual_blocks(model) if self.settings["shortcuts"] == "any" or not b.projection]

    def calibrate(self, model, trial):
        from edgecompress.methods._block_surgery import remove_blocks

        candidates, wanted, allowed = self.candidates(model), self.settings["blocks"], self.settings["shortcuts"]
        shortcuts = f"{self.written('shortcuts')} ({allowed})"
        if not candidates:
            raise UserError(f"params: method {self.name} is not allowed here; the upstream model has no residual "
                            f"block that {shortcuts} lets it remove; expected a model with residual blocks (an Add of "
                            "two chains of layers from one tensor)")
        if wanted > len(candidates):
            raise UserError(f"params: {self.written('blocks')} = {wanted} is not allowed; the upstream model has "
                            f"{len(candidates)} residual blocks that {shortcuts} lets it remove; expected at most "
                            f"{len(candidates)}")
        self.removed, self.lesions = [], []
        for _ in range(wanted):
            scored = [(trial(remove_blocks(model, [*self.removed, block]), 0), _parameters(model, block), block)
                      for block in candidates if block not in self.removed]
            accuracy, parameters, block = max(scored, key=lambda score: score[:2])
            self.removed.append(block)
            self.lesions.append({"block": block.add, "layers": len(block.branch), "parameters": parameters,
                                 "shortcut": "projection" if block.projection else "identity",
                                 "val_accuracy_without": accuracy})
        self.removable = len(candidates)
        super().calibrate(remove_blocks(model, self.removed), trial)

    def apply(self, model, upstream, steps):
        from edgecompress.methods._block_surgery import remove_blocks

        return super().apply(remove_blocks(model, self.removed), upstream, steps)

    def facts(self):
        return {**super().facts(), "removed": self.lesions, "removable": self.removable}

    @staticmethod
    def describe(model: str, record: dict) -> str:
        facts = record["facts"]
        removed = [f"{r['block']}, {r['parameters']:,} parameters" for r in facts["removed"]]
        return (f"`{model}`: removed {len(removed)} of {facts['removable']} removable residual blocks "
                f"({'; '.join(removed)}), each the one without which validation accuracy stayed highest (a lesion, "
                f"Veit et al. 2016); then {distillation_text(record)}")


METHODS = {"block_prune": BlockPrune}
