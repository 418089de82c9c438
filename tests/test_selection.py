"""The Pareto front and the pick per budget, on hand-made rows whose answers are known."""
import itertools

import pytest

from edgecompress.core import params
from edgecompress.report import selection


def row(model, quant, accuracy, gzip_kb, p50, reference_accuracy=0.99, ram_kb=None):
    """A report row; `ram_kb`: its TFLM arena (None: not run on TFLM), its flash the file's size."""
    size = int(gzip_kb * 1100)
    return {"model": model, "quantization": quant, "accuracy": accuracy,
            "accuracy_delta_points": round(100 * (accuracy - reference_accuracy), 4),
            "accuracy_ci95": [accuracy - 0.01, accuracy + 0.01], "flips_lost": 0, "flips_gained": 0, "mcnemar_p": 1.0,
            "size_bytes": size, "gzip_bytes": int(gzip_kb * 1000), "latency_p50_ms": p50,
            "ram_bytes": None if ram_kb is None else int(ram_kb * 1000),
            "flash_bytes": None if ram_kb is None else size}


ROWS = [
    row("baseline", "fp32", 0.99, 10_000, 2.0),
    row("baseline", "int8", 0.99, 2_500, 0.5),    # dominates baseline fp32
    row("pruned", "int8", 0.985, 800, 0.5),
    row("pcqat", "int8", 0.98, 600, 0.6),
    row("student", "int8", 0.95, 400, 0.7),
    row("student", "fp16", 0.95, 700, 0.9),      # dominated by student int8 and pcqat int8
    row("qat", "int8", 0.99, 2_600, 0.4),         # as accurate as baseline int8, faster, larger: not dominated
]


def labels(rows):
    return {selection.label(r) for r in rows}


def test_front_is_exactly_the_undominated_rows():
    front = selection.pareto_front(ROWS)
    assert labels(front) == {"baseline int8", "pruned int8", "pcqat int8", "student int8", "qat int8"}
    assert [r["gzip_bytes"] for r in front] == sorted(r["gzip_bytes"] for r in front)
    for a, b in itertools.permutations(front, 2):
        assert not selection.dominates(a, b)


def test_equal_rows_do_not_dominate_each_other():
    a = row("a", "int8", 0.9, 100, 1.0)
    assert not selection.dominates(a, dict(a, model="b"))
    assert len(selection.pareto_front([a, dict(a, model="b")])) == 2


@pytest.mark.parametrize("budget, expected", [
    ({"max_gzip_kb": 1000, "prefer": "accuracy"}, "pruned int8"),
    ({"max_gzip_kb": 1000, "prefer": "gzip"}, "student int8"),
    ({"max_latency_p50_ms": 0.5, "prefer": "accuracy"}, "baseline int8"),  # ties on accuracy: smaller gzip wins
    ({"max_latency_p50_ms": 0.5, "prefer": "latency"}, "qat int8"),
    ({"max_loss_points": 0.5, "prefer": "gzip"}, "pruned int8"),
    ({"max_loss_points": 1.0, "max_gzip_kb": 700, "prefer": "accuracy"}, "pcqat int8"),
    ({"max_size_kb": 700, "prefer": "accuracy"}, "pcqat int8"),  # 600 KB gzip is 660 KB on disk
    ({"prefer": "accuracy"}, "baseline int8"),
])
def test_the_pick_is_the_best_within_every_limit(budget, expected):
    pick = selection.recommend(ROWS, budget)
    assert pick["fits"] and f"{pick['model']} {pick['quantization']}" == expected
    assert pick["text"].startswith(expected + ":")


def test_a_budget_nobody_meets_says_so_and_names_the_closest_miss():
    pick = selection.recommend(ROWS, {"max_gzip_kb": 50, "prefer": "accuracy"})
    assert not pick["fits"] and pick["model"] is None
    assert pick["closest"] == {"model": "student", "quantization": "int8", "over": {"max_gzip_kb": 7.0}}
    assert pick["text"] == ("No model fits (gzip size ≤ 50 KB). The closest is student int8: "
                            "gzip size 400.0 KB is 700 % over the 50 KB limit.")


def test_closest_miss_over_two_limits_is_the_smallest_worst_excess():
    pick = selection.recommend(ROWS, {"max_gzip_kb": 500, "max_latency_p50_ms": 0.45, "prefer": "accuracy"})
    # worst excess: student int8 56 % (p50), qat int8 420 % (gzip), pruned int8 60 % (gzip), pcqat int8 33 % (p50)
    assert pick["closest"] == {"model": "pcqat", "quantization": "int8",
                               "over": {"max_gzip_kb": 0.2, "max_latency_p50_ms": 0.3333}}
    assert pick["text"].endswith("The closest is pcqat int8: gzip size 600.0 KB is 20 % over the 500 KB limit, "
                                 "p50 latency 0.600 ms is 33 % over the 0.45 ms limit.")


def test_best_compressed_is_the_highlighted_pick_or_the_most_accurate_compressed_on_the_front():
    front = selection.pareto_front(ROWS)
    reference = ("baseline", "fp32")
    pick = selection.recommend(ROWS, {"max_gzip_kb": 1000, "prefer": "accuracy"})
    assert selection.label(selection.best_compressed(ROWS, front, pick, reference)) == "pruned int8"
    none = selection.recommend(ROWS, {"max_gzip_kb": 1, "prefer": "accuracy"})
    assert selection.label(selection.best_compressed(ROWS, front, none, reference)) == "baseline int8"


MICRO_ROWS = [
    row("baseline", "fp32", 0.99, 10_000, 2.0),                  # no TFLM figures: never fits a RAM or flash limit
    row("baseline", "int8", 0.99, 2_500, 0.5, ram_kb=300),
    row("pruned", "int8", 0.985, 800, 0.5, ram_kb=300),          # 880 KB of flash
    row("student", "int8", 0.95, 400, 0.7, ram_kb=40),           # 440 KB of flash
    row("filter_pruned", "int8", 0.97, 500, 0.6, ram_kb=200),    # 550 KB of flash
]


@pytest.mark.parametrize("budget, expected", [
    ({"max_ram_kb": 256, "prefer": "accuracy"}, "filter_pruned int8"),
    ({"max_ram_kb": 100, "prefer": "accuracy"}, "student int8"),
    ({"max_ram_kb": 400, "max_flash_kb": 1000, "prefer": "accuracy"}, "pruned int8"),
    ({"max_flash_kb": 500, "prefer": "accuracy"}, "student int8"),
])
def test_ram_and_flash_limits_pick_the_best_model_that_fits_a_microcontroller(budget, expected):
    pick = selection.recommend(MICRO_ROWS, budget)
    assert pick["fits"] and selection.label(pick) == expected
    assert "TFLM arena" in pick["text"]


def test_a_model_without_tflm_figures_misses_a_ram_limit_by_not_being_measured():
    only_float = [MICRO_ROWS[0]]
    pick = selection.recommend(only_float, {"max_ram_kb": 256, "prefer": "accuracy"})
    assert not pick["fits"] and pick["closest"]["over"] == {"max_ram_kb": None}
    assert pick["text"].endswith(f"The closest is baseline fp32: TFLM arena {selection.UNMEASURED}.")
    nearest = selection.recommend(MICRO_ROWS, {"max_ram_kb": 20, "prefer": "accuracy"})
    assert nearest["closest"] == {"model": "student", "quantization": "int8", "over": {"max_ram_kb": 1.0}}


def test_a_smaller_arena_keeps_a_model_on_the_front():
    lean = row("lean", "int8", 0.99, 2_500, 0.5, ram_kb=100)
    heavy = dict(lean, model="heavy", ram_bytes=200_000)
    assert selection.dominates(lean, heavy) and not selection.dominates(heavy, lean)
    assert selection.dominates(lean, dict(lean, model="float", ram_bytes=None))
