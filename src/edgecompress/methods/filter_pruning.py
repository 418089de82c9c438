"""Filter pruning (paper 004's FPGM, or L1 / L2): remove whole filters so the network itself shrinks and speeds up.

Each of filter_prune.steps rounds removes an equal share of every prunable group's filters, then fine-tunes for
filter_prune.epochs; after the last round filter_prune.ratio of the filters are gone.
"""
from edgecompress.core.params import NAMES, fine_tuning, integer, number, one_of
from edgecompress.methods.base import Method


class FilterPrune(Method):
    """Shrink the upstream model by filter_prune.criterion, fine-tuning after each of filter_prune.steps rounds."""

    rules = fine_tuning(criterion=one_of("fpgm", "l1", "l2"), ratio=number(0, 1, low_open=True, high_open=True),
                        steps=integer(1), skip_layers=NAMES)

    def __init__(self, settings: dict):
        super().__init__(settings)
        self.rounds = settings["steps"]
        self.round_ratio = 1 - (1 - settings["ratio"]) ** (1 / self.rounds)  # compounds to `ratio` over the rounds
        self.plans = []

    def apply(self, model, upstream, steps):
        from edgecompress.methods._filter_surgery import prune_filters

        s = self.settings
        smaller, plan = prune_filters(model, s["criterion"], self.round_ratio, s["skip_layers"])
        self.plans.append(plan)
        return smaller

    def finish(self, model, train_images):
        """Re-estimate BatchNorm statistics, which lag behind the weights after fine-tuning a reshaped network."""
        from edgecompress.train.training import reestimate_batch_norm

        reestimate_batch_norm(model, train_images)
        return model

    def facts(self):
        """Per prunable group: its layers, filters before the first round and after the last, or why it is whole."""
        first, last = self.plans[0], self.plans[-1]
        groups = []
        for group, final in zip(first.roots(), last.roots()):
            kept = len(final.keep) if final.keep is not None else final.size
            groups.append({"layers": group.producers, "filters": group.size, "kept": kept, "whole": group.whole})
        return {"groups": [g for g in groups if g["layers"]], "criterion": self.settings["criterion"]}

    def properties(self):
        return {"unsupported_layers": self.plans[0].unfollowed}

    @staticmethod
    def describe(model: str, record: dict) -> str:
        facts = record["facts"]
        groups = facts["groups"]
        pruned = [g for g in groups if not g["whole"]]
        text = (f"`{model}`: {facts['criterion']} removed {sum(g['filters'] - g['kept'] for g in groups):,} of "
                f"{sum(g['filters'] for g in groups):,} filters in {len(pruned)} of {len(groups)} channel groups "
                "(layers joined by a residual add share one group)")
        whole = [f"{', '.join(g['layers'])} ({g['whole']})" for g in groups if g["whole"]]
        return text + (f"; left whole: {'; '.join(whole)}." if whole else ".")


METHODS = {"filter_prune": FilterPrune}
