"""Choosing a model: the Pareto front over accuracy, gzip size, latency and microcontroller RAM, the best model per
budget, and the report's params section (its budgets)."""
import math

from pydantic import create_model

from edgecompress.core.errors import UserError
from edgecompress.core.params import POINTS, POSITIVE, Section, integer, named, one_of, rule
from edgecompress.measure.compare import verdict

KB = 1000  # bytes in the report's KB
# budget key -> (what it limits, unit, number format, the report row's field, its divisor into the unit)
LIMITS = {
    "max_gzip_kb": ("gzip size", "KB", "{:,.1f}", "gzip_bytes", KB),
    "max_size_kb": ("file size", "KB", "{:,.1f}", "size_bytes", KB),
    "max_latency_p50_ms": ("p50 latency", "ms", "{:.3f}", "latency_p50_ms", 1),
    "max_loss_points": ("accuracy lost", "points", "{:.2f}", "accuracy_delta_points", -1),
    "max_ram_kb": ("TFLM arena", "KB", "{:,.1f}", "ram_bytes", KB),
    "max_flash_kb": ("flash", "KB", "{:,.1f}", "flash_bytes", KB),
}
# what the Pareto front weighs, each as a budget key's measure (less is better): accuracy lost, gzip size, p50 latency
# and TFLM arena (infinite where not measured)
FRONT = ("max_loss_points", "max_gzip_kb", "max_latency_p50_ms", "max_ram_kb")
UNMEASURED = "not measured: the model does not run on TensorFlow Lite Micro, or evaluate.micro leaves its variant out"
# what a budget may prefer -> (the report row's field, -1 where more is better); the others break ties
PREFERENCES = {"accuracy": ("accuracy", -1), "gzip": ("gzip_bytes", 1), "latency": ("latency_p50_ms", 1)}


TOLERANCE = 1e-9  # accuracies are fractions of the test split: compare in points without float noise


def row_id(row) -> tuple:
    """What names a row (or a pick): (model, quantization)."""
    return row["model"], row["quantization"]


def label(row) -> str:
    return " ".join(row_id(row))


def measured(row, key) -> float:
    """The row's value for a budget key, in the key's unit; infinite where it was not measured (RAM and flash of a
    model that did not run on TFLM)."""
    *_, field, divisor = LIMITS[key]
    return math.inf if row[field] is None else row[field] / divisor


def preference(prefer: str):
    """The sort key of a budget's preference: its own measure first, the other preferences after it."""
    order = [prefer] + [p for p in PREFERENCES if p != prefer]
    return lambda row: tuple(row[PREFERENCES[p][0]] * PREFERENCES[p][1] for p in order)


def dominates(a, b) -> bool:
    """a is no worse than b on every measure of FRONT, and better on at least one."""
    pairs = [(measured(a, key), measured(b, key)) for key in FRONT]
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def pareto_front(rows) -> list:
    """The rows no other row dominates, smallest gzip first."""
    front = [r for r in rows if not any(dominates(other, r) for other in rows)]
    return sorted(front, key=lambda r: (r["gzip_bytes"], -r["accuracy"]))


def misses(row, limits) -> dict:
    """Each limit the row exceeds, as how far over it is relative to the limit (0.25: 25 % over)."""
    over = {}
    for key, limit in limits.items():
        value = measured(row, key)
        if value > limit + TOLERANCE:
            over[key] = (value - limit) / limit
    return over


def describe_limits(limits) -> str:
    return " and ".join(f"{LIMITS[k][0]} ≤ {v:g} {LIMITS[k][1]}" for k, v in limits.items()) or "no limit"


def difference(row) -> str:
    """A row's accuracy against the reference on the same images, and whether the difference is significant."""
    low, high = row["accuracy_ci95"]
    text = f"{row['accuracy_delta_points']:+.2f} points, 95% interval {low:.4f}-{high:.4f}"
    if not row["flips_lost"] + row["flips_gained"]:
        return text + ", the reference's prediction on every image"
    return (text + f", images lost / gained against the reference {row['flips_lost']} / {row['flips_gained']}, "
                   f"McNemar p {row['mcnemar_p']:.2g}: {verdict(row['mcnemar_p'])}")


def limits(budget) -> dict:
    """The limits of a budget ({max_...: limit}), without its `prefer`."""
    return {key: value for key, value in budget.items() if key in LIMITS}


def recommend(rows, budget) -> dict:
    """The best row within every limit of `budget` ({max_...: limit, prefer: ...}), or the closest miss.

    Closest: the row whose worst relative excess over a limit is smallest.
    """
    bounds = limits(budget)
    fitting = [r for r in rows if not misses(r, bounds)]
    if fitting:
        pick = min(fitting, key=preference(budget["prefer"]))
        return {"fits": True, "model": pick["model"], "quantization": pick["quantization"],
                "text": f"{label(pick)}: accuracy {pick['accuracy']:.4f} ({difference(pick)}), "
                        f"gzip {pick['gzip_bytes'] / KB:,.1f} KB, p50 {pick['latency_p50_ms']:.3f} ms"
                        + (f", TFLM arena {pick['ram_bytes'] / KB:,.1f} KB, flash {pick['flash_bytes'] / KB:,.1f} KB"
                           if pick["ram_bytes"] is not None else "") + " "
                        f"(the best {budget['prefer']} of {len(fitting)} within {describe_limits(bounds)})."}
    closest = min(rows, key=lambda r: max(misses(r, bounds).values()))
    over = misses(closest, bounds)
    missed = ", ".join(f"{LIMITS[k][0]} {UNMEASURED}" if math.isinf(frac) else
                       f"{LIMITS[k][0]} {LIMITS[k][2].format(measured(closest, k))} {LIMITS[k][1]} is "
                       f"{100 * frac:,.0f} % over the {bounds[k]:g} {LIMITS[k][1]} limit" for k, frac in over.items())
    return {"fits": False, "model": None, "quantization": None,
            "closest": {"model": closest["model"], "quantization": closest["quantization"],
                        "over": {k: None if math.isinf(frac) else round(frac, 4) for k, frac in over.items()}},
            "text": f"No model fits ({describe_limits(bounds)}). The closest is {label(closest)}: {missed}."}


def best_compressed(rows, front, pick, reference) -> dict:
    """The pick of the highlighted budget; failing that, the most accurate compressed model on the front."""
    if pick and pick["fits"] and row_id(pick) != reference:
        return next(r for r in rows if row_id(r) == row_id(pick))
    compressed = [r for r in front if row_id(r) != reference] or front
    return min(compressed, key=preference("accuracy"))


Budget = create_model("Budget", __base__=Section, __doc__="A budget: any of LIMITS (omitted: no limit), and `prefer`.",
                      prefer=(one_of(*PREFERENCES), ...), **{key: (POSITIVE, None) for key in LIMITS})


class Report(Section):
    """The report's section: the budgets, the one whose pick is "the best compressed model", what counts as a
    class's damage and as a model's damage by fine-tuning, and how many of the images compression forgets to show."""
    budgets: named(Budget)
    highlight: rule("a name", lambda v: isinstance(v, str))
    class_drop_points: POINTS
    damage_points: POINTS
    forgotten_images: integer(0)


def check_highlight(section: dict) -> None:
    """report.highlight must name one of the budgets."""
    if section["highlight"] not in section["budgets"]:
        raise UserError(f"params: report.highlight = {section['highlight']!r} is not allowed; expected one of the "
                        f"budgets: {', '.join(section['budgets'])}")
