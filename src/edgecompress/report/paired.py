"""What the report reads from every test image's prediction: which differences are significant, the classes a model
damages, and the images compression forgets."""
from collections import Counter

import numpy as np

from edgecompress.measure.compare import REFERENCE, flips, significant


class Predictions:
    """Every model x quantization's predicted class per test image, and the images' labels, from the evaluate
    details ({model: details})."""

    def __init__(self, details: dict):
        self.labels = np.asarray(details[REFERENCE[0]]["labels"])
        self.classes = details[REFERENCE[0]]["classes"]
        self.by_row = {(model, quant): np.asarray(d["models"][quant]["predictions"])
                       for model, d in details.items() for quant in d["models"]}
        self.recall = {(model, quant): d["models"][quant]["recall"]
                       for model, d in details.items() for quant in d["models"]}

    def versus(self, before: tuple, after: tuple) -> dict:
        """The images `after` loses and gains against `before` (rows named (model, quantization)), McNemar's p."""
        return flips(self.by_row[before], self.by_row[after], self.labels)

    def indistinct_from_cheaper(self, front: list) -> dict:
        """{row id: the id of a smaller row on `front` (sorted by gzip) whose accuracy is not significantly
        different}: the rows whose extra bytes buy no accuracy that the test split can show."""
        ids = [(r["model"], r["quantization"]) for r in front]
        found = {}
        for i, row in enumerate(ids):
            cheaper = [c for c in ids[:i] if not significant(self.versus(c, row)["mcnemar_p"])]
            if cheaper:
                found[row] = cheaper[0]
        return found

    def class_damage(self, threshold_points: float) -> list:
        """(model, quantization, class, reference recall, recall) of every class whose recall is at least
        `threshold_points` below the reference's, largest drop first."""
        reference = self.recall[REFERENCE]
        drops = [(row[0], row[1], name, reference[name], recall[name]) for row, recall in self.recall.items()
                 for name in self.classes if 100 * (reference[name] - recall[name]) >= threshold_points]
        return sorted(drops, key=lambda d: (d[4] - d[3], d[0], d[1]))

    def forgotten(self, count: int) -> list:
        """The `count` test images that the most models x quantizations get wrong where the reference is right:
        index in the test split, label, how many rows flip it and what they predict ({class: rows})."""
        right = self.by_row[REFERENCE] == self.labels
        wrong = {row: (p != self.labels) & right for row, p in self.by_row.items() if row != REFERENCE}
        times = sum(wrong.values(), np.zeros_like(self.labels))
        ranked = [int(i) for i in np.argsort(-times, kind="stable")[:count] if times[i]]
        return [{"index": i, "label": self.classes[self.labels[i]], "flipped_by": int(times[i]),
                 "predicted": dict(Counter(self.classes[self.by_row[row][i]] for row in wrong if wrong[row][i]))}
                for i in ranked]
