"""Paired comparisons on the test split: what is significant at its size, and what is noise.

Every model is compared with the reference on the same images: an accuracy's 95% interval (Wilson's score
interval), the images it loses and gains against another model's predictions, and the exact McNemar test on those
two counts. Python and numpy alone: the evaluation and the report use them without TensorFlow or scipy.
"""
import math
from statistics import NormalDist

import numpy as np

REFERENCE = ("baseline", "fp32")  # (model, quantization) that every comparison is paired against
CONFIDENCE = 0.95
SIGNIFICANCE = 0.05  # a difference whose McNemar p is above this is not significant


def wilson_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> list:
    """Wilson's score interval [low, high] for a proportion of `correct` out of `total` (no continuity correction):
    it stays inside [0, 1] and keeps its coverage near 0 and 1, where the normal interval does not."""
    if total == 0:
        return [0.0, 1.0]
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    share, z2 = correct / total, z * z
    centre = (share + z2 / (2 * total)) / (1 + z2 / total)
    half = z / (1 + z2 / total) * math.sqrt(share * (1 - share) / total + z2 / (4 * total * total))
    return [max(0.0, centre - half), min(1.0, centre + half)]


def mcnemar_p(lost: int, gained: int) -> float:
    """Exact (binomial) two-sided McNemar test: the chance of a split of the lost + gained discordant images at least
    as uneven as this one if both models were equally accurate. 1.0 when no image differs."""
    flips = lost + gained
    tail = sum(math.comb(flips, i) for i in range(min(lost, gained) + 1))
    return min(1.0, 2 * tail / 2 ** flips)


def flips(reference, predictions, labels) -> dict:
    """The images the reference gets right and `predictions` wrong (lost), the reverse (gained), and McNemar's p."""
    reference, predictions, labels = (np.asarray(a) for a in (reference, predictions, labels))
    right_before, right_now = reference == labels, predictions == labels
    lost, gained = int((right_before & ~right_now).sum()), int((~right_before & right_now).sum())
    return {"flips_lost": lost, "flips_gained": gained, "mcnemar_p": mcnemar_p(lost, gained)}


def significant(p: float) -> bool:
    return p <= SIGNIFICANCE


def verdict(p: float) -> str:
    return "significant" if significant(p) else "not significant"


def described(versus: dict, images: int) -> str:
    """A paired difference (flips) in words: its points, the images gained and lost, McNemar's p and its verdict."""
    points = 100 * (versus["flips_gained"] - versus["flips_lost"]) / images
    return (f"{points:+.2f} points, {versus['flips_gained']} images gained and {versus['flips_lost']} lost, McNemar p "
            f"{versus['mcnemar_p']:.2g}: {verdict(versus['mcnemar_p'])}")
