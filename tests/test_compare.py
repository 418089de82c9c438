"""The paired comparisons' figures against scipy's own functions, and the report's reading of predictions against
hand counts."""
import numpy as np
import pytest
from scipy import stats

from edgecompress import report
from edgecompress.measure import compare, runner
from edgecompress.report.paired import Predictions


@pytest.mark.parametrize("correct, total", [(0, 360), (1, 360), (355, 360), (360, 360), (180, 360), (0, 1), (1, 1),
                                            (7, 10)])
def test_wilson_interval_is_scipys(correct, total):
    expected = stats.binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    assert compare.wilson_interval(correct, total) == pytest.approx([expected.low, expected.high], abs=1e-12)


@pytest.mark.parametrize("lost, gained", [(0, 0), (0, 1), (1, 0), (5, 0), (0, 6), (3, 3), (12, 4), (40, 0), (7, 30),
                                          (200, 180)])
def test_mcnemar_is_scipys_exact_binomial_test(lost, gained):
    expected = 1.0 if lost + gained == 0 else stats.binomtest(lost, lost + gained, 0.5).pvalue
    assert compare.mcnemar_p(lost, gained) == pytest.approx(expected, rel=1e-9)


def test_flips_are_the_hand_count():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    reference = np.array([0, 1, 2, 0, 1, 0, 1, 1])   # wrong on images 5 and 6
    model = np.array([0, 2, 2, 1, 1, 2, 1, 1])        # loses 1 and 3, gains 5, shares 6's mistake
    assert compare.flips(reference, model, labels) == {"flips_lost": 2, "flips_gained": 1,
                                                       "mcnemar_p": stats.binomtest(2, 3, 0.5).pvalue}


@pytest.mark.parametrize("case", ["no flips", "all flips", "one class"])
def test_flips_edge_cases(case):
    labels = np.zeros(20, dtype=int) if case == "one class" else np.arange(20) % 4
    reference = labels.copy()
    model = {"no flips": labels, "all flips": (labels + 1) % 4, "one class": labels}[case]
    if case == "one class":
        model = np.where(np.arange(20) < 15, 0, 3)  # one class: 5 images lost, none gained
    result = compare.flips(reference, model, labels)
    lost = {"no flips": 0, "all flips": 20, "one class": 5}[case]
    assert result["flips_lost"] == lost and result["flips_gained"] == 0
    assert result["mcnemar_p"] == pytest.approx(1.0 if not lost else stats.binomtest(lost, lost, 0.5).pvalue)


@pytest.mark.parametrize("n", [6, 7, 10, 51, 360, 720])
def test_median_interval_is_scipys_order_statistic_interval(n):
    samples = np.random.default_rng(n).lognormal(size=n)
    expected = stats.quantile_test(samples, q=1, p=0.5).confidence_interval(0.95)
    assert runner.median_interval(samples.tolist()) == [expected.low, expected.high]


def test_median_interval_has_no_bound_from_too_few_samples():
    assert runner.median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) == [None, None]
    assert runner.median_interval([]) == [None, None]


def details(predictions: dict, labels, classes=("a", "b", "c")) -> dict:
    """Evaluate details of hand-made predictions ({model: {quant: list}}), with per-class recall."""
    labels = np.asarray(labels)
    out = {}
    for model, quants in predictions.items():
        out[model] = {"labels": labels.tolist(), "classes": list(classes), "models": {}}
        for quant, predicted in quants.items():
            _, recall, _ = runner.per_class(labels, np.asarray(predicted), len(classes))
            out[model]["models"][quant] = {"predictions": list(predicted), "recall": dict(zip(classes, recall))}
    return out


LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
PREDICTED = Predictions(details({
    "baseline": {"fp32": [0, 0, 0, 0, 1, 1, 1, 1, 2, 0], "int8": [0, 0, 0, 0, 1, 1, 1, 1, 2, 0]},
    "pruned": {"int8": [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]},    # class b loses half its recall; image 9 gained
    "tiny": {"int8": [0, 0, 0, 0, 0, 0, 2, 1, 0, 0]},      # also forgets 6 and 8
}, LABELS))


def test_class_damage_names_the_classes_beyond_the_threshold():
    # the reference's recall: a 1, b 1, c 0.5; largest drop first, then by model
    assert PREDICTED.class_damage(50) == [("tiny", "int8", "b", 1.0, 0.25), ("pruned", "int8", "b", 1.0, 0.5),
                                          ("tiny", "int8", "c", 0.5, 0.0)]
    assert PREDICTED.class_damage(60) == [("tiny", "int8", "b", 1.0, 0.25)]


def test_forgotten_images_are_ranked_by_how_many_models_flip_them():
    forgotten = PREDICTED.forgotten(3)
    assert [(f["index"], f["flipped_by"]) for f in forgotten] == [(4, 2), (5, 2), (6, 1)]
    assert forgotten[0] == {"index": 4, "label": "b", "flipped_by": 2, "predicted": {"a": 2}}
    assert forgotten[2]["predicted"] == {"c": 1}
    assert len(PREDICTED.forgotten(10)) == 4  # images 4, 5, 6, 8: no image the reference gets wrong, none unflipped


def test_a_larger_model_no_more_accurate_than_a_smaller_one_is_marked():
    front = [{"model": "tiny", "quantization": "int8"}, {"model": "pruned", "quantization": "int8"},
             {"model": "baseline", "quantization": "fp32"}]
    # pruned against tiny: 3 gained, 0 lost (p 0.25); baseline against tiny: 4 gained, 0 lost (p 0.125)
    assert PREDICTED.indistinct_from_cheaper(front) == {("pruned", "int8"): ("tiny", "int8"),
                                                        ("baseline", "fp32"): ("tiny", "int8")}


def test_the_report_shows_one_damage_row_per_model_and_class():
    section = report.damage_section(PREDICTED, 50)
    assert section.table == [["tiny", "b", "int8", "1.000", "0.250", "-75.0"],
                             ["pruned", "b", "int8", "1.000", "0.500", "-50.0"],
                             ["tiny", "c", "int8", "0.500", "0.000", "-50.0"]]
    assert "A class has 2 to 4 test images, so one image moves its recall by 25.0 to 50.0 points." in \
        section.paragraphs[0]
    assert report.damage_section(PREDICTED, 90).paragraphs[0].endswith("No model damages a class this much.")
