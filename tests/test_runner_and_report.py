import base64
import html.parser
import json

import numpy as np
import pytest

from edgecompress import report
from edgecompress.measure import compare, runner
from edgecompress.report import selection
from edgecompress.report.paired import Predictions


def test_per_class_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    precision, recall, confusion = runner.per_class(y_true, y_pred, 3)
    assert confusion.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert precision.tolist() == [1.0, 0.5, 0.5]
    assert recall == pytest.approx([2 / 3, 0.5, 1.0])


def test_class_never_predicted_has_zero_precision():
    precision, recall, _ = runner.per_class(np.array([0, 1]), np.array([0, 0]), 2)
    assert precision.tolist() == [0.5, 0.0] and recall.tolist() == [1.0, 0.0]


IMAGES = 100
LABELS = [i % 10 for i in range(IMAGES)]
CFG = {"class_drop_points": 10, "damage_points": 3}  # the report section's thresholds


def predicted(accuracy) -> list:
    """Predictions right on the first accuracy x IMAGES images, wrong on the rest."""
    right = round(accuracy * IMAGES)
    return [y if i < right else (y + 1) % 10 for i, y in enumerate(LABELS)]


def block(accuracy, size, gzip, p50, sparsity=0.0, distinct=200, reference_accuracy=0.99):
    """A metrics block whose paired figures are those of predicted(accuracy) against predicted(reference)."""
    return {"accuracy": accuracy, "size_bytes": size, "gzip_bytes": gzip, "latency_p50_ms": p50,
            "litert_ram_bytes": 2 * size,
            "sparsity": sparsity, "max_distinct_per_channel": distinct,
            "accuracy_ci95": compare.wilson_interval(round(accuracy * IMAGES), IMAGES),
            **compare.flips(predicted(reference_accuracy), predicted(accuracy), LABELS)}


def predictions_of(metrics) -> Predictions:
    """The Predictions that the hand-made `metrics` were measured from."""
    classes = [str(c) for c in range(10)]
    details = {}
    for model, m in metrics.items():
        quants = [q for q in m if isinstance(m[q], dict)]
        recalls = {q: runner.per_class(np.array(LABELS), np.array(predicted(m[q]["accuracy"])), 10)[1] for q in quants}
        details[model] = {"labels": LABELS, "classes": classes, "models": {
            q: {"predictions": predicted(m[q]["accuracy"]), "recall": dict(zip(classes, recalls[q]))} for q in quants}}
    return Predictions(details)


def test_rows_are_relative_to_the_fp32_baseline():
    metrics = {
        "baseline": {"params_count": 100, "macs": 1000,
                     "fp32": block(0.99, 4000, 3600, 0.2), "int8": block(0.98, 1000, 720, 0.05, 0.795, 16)},
    }
    metrics["baseline"]["int8"] |= {"tflm": True, "tflm_fault": None, "ram_bytes": 5000, "flash_bytes": 1000,
                                    "tflm_accuracy": 0.97, "tflm_disagreements": 1}
    rows = report.rows(metrics, {"baseline": 2.0})
    assert rows[0]["epoch_seconds"] == 2.0
    assert [(r["model"], r["quantization"]) for r in rows] == [("baseline", "fp32"), ("baseline", "int8")]
    int8 = rows[1]
    assert int8["accuracy_delta_points"] == pytest.approx(-1.0)
    assert int8["compression"] == pytest.approx(4.0)
    assert int8["gzip_compression"] == pytest.approx(5.0)
    assert int8["latency_ratio"] == pytest.approx(0.25)
    front = selection.pareto_front(rows)
    picks = {"small": selection.recommend(rows, {"max_gzip_kb": 1, "prefer": "accuracy"}),
             "tiny": selection.recommend(rows, {"max_gzip_kb": 0.5, "prefer": "accuracy"})}
    training = {"architecture": "imports/mine.keras", "params_count": 100, "input_range": [-1, 1],
                "initial_weights": None, "initial_weight_layers": None, "unsupported_layers": [], "source": "baseline",
                "method": "prune", "facts": {}}
    groups = [{"layers": ["stem_conv", "b_conv"], "filters": 8, "kept": 4, "whole": None},
              {"layers": ["logits"], "filters": 10, "kept": 10, "whole": "it is a model output"}]
    weights = {"labels": 0.25, "teacher": 0.75, "probe_epochs": 1, "untrained_accuracy": 0.1, "gain_labels": 0.2,
               "gain_teacher": 0.6}
    trainings = {"baseline": {**training, "source": None, "method": None},
                 "pruned": {**training, "unsupported_layers": ["prelu (PReLU)"]},
                 "filter_pruned": {**training, "method": "filter_prune", "facts": {"criterion": "fpgm", "groups": groups}},
                 "filter_pruned_kd": {**training, "teacher": "baseline", "method": "filter_prune_kd", "facts": weights}}
    content = report.sections(rows, front, picks, rows[1], trainings, predictions_of(metrics), [], CFG, [],
                              report.micro_rows(metrics))
    text = report.markdown(content)
    assert "`baseline`: imports/mine.keras, 100 parameters, pixels scaled to [-1, 1]" in text
    assert "| pruned | prelu (PReLU) |" in text
    assert ("| baseline | int8 | 0.9800 | 0.930-0.994 | -1.00 (n.s.) | 1 / 0 (1) | 1.0 | 0.7 | 5.00x | 0.050 | 0.25 "
            "| 79.5% | 16 | 2.0 | 5.0 | 100 | 1,000 | 1.00 | 2.00 | yes |") in text
    assert ("| baseline | fp32 | 0.9900 | 0.946-0.998 | +0.00 | 0 / 0 (1) | 4.0 | 3.6 | 1.00x | 0.200 | 1.00 | 0.0% "
            "| 200 | 8.0 | — | 100 | 1,000 | 1.00 | 2.00 | yes |") in text
    assert "| baseline | int8 | 5.0 |  | 1.0 | 0.9700 | 0.9800 | 1 |" in text  # On a microcontroller
    assert ("`filter_pruned`: fpgm removed 4 of 18 filters in 1 of 2 channel groups (layers joined by a residual add "
            "share one group); left whole: logits (it is a model output).") in text
    assert ("`filter_pruned_kd`: distilled from `baseline`, label loss weight 0.250, teacher 0.750, allocated by "
            "paper 004's formula 7 from 1-epoch probes of a fresh student: labels alone gained +20.0 points, the "
            "teacher alone +60.0 (from 0.100).") in text
    assert ("| small | baseline int8: accuracy 0.9800 (-1.00 points, 95% interval 0.9300-0.9945, images lost / gained "
            "against the reference 1 / 0, McNemar p 1: not significant), gzip 0.7 KB, p50 0.050 ms, TFLM arena 5.0 KB, "
            "flash 1.0 KB") in text
    assert "| tiny | No model fits (gzip size ≤ 0.5 KB). The closest is baseline int8: gzip size 0.7 KB is 44 %" in text
    assert "2 of the 2 models x quantizations are not dominated" in text
    assert "loses more than 3 points there (report.damage_points) is flagged" in text and "No model lost" in text


def test_the_three_students_stand_side_by_side_and_factorization_is_described():
    metrics = {name: {"params_count": params, "macs": 500, "fp32": block(accuracy, 900, 800, 0.1),
                      "int8": block(accuracy - 0.01, 300, 250, 0.05)}
               for name, params, accuracy in (("baseline", 1000, 0.99), ("lowrank", 400, 0.985),
                                              ("student_scratch", 200, 0.95), ("student_distilled", 200, 0.96),
                                              ("student_attention", 200, 0.97))}
    rows = report.rows(metrics, {})
    base = {"architecture": "mobilenetv2", "input_range": [0, 1], "initial_weights": None, "unsupported_layers": [],
            "source": None, "teacher": None, "params_count": 200, "method": "train_student", "facts": {}}
    pairs = [{"student": "block_3_expand_relu", "teacher": "stem_relu", "student_size": [16, 16],
              "teacher_size": [16, 16]},
             {"student": "block_1_expand_relu", "teacher": "stem_relu", "student_size": [32, 32],
              "teacher_size": [16, 16]}]
    factorized = [{"layer": "conv", "kernel": [72, 16], "rank": 4, "full_rank": 16, "energy_kept": 0.52,
                   "factorized": True},
                  {"layer": "logits", "kernel": [16, 10], "rank": 8, "full_rank": 10, "energy_kept": 0.61,
                   "factorized": False}]
    trainings = {
        "baseline": {**base, "architecture": "resnet18", "params_count": 1000, "method": None},
        "lowrank": {**base, "source": "baseline", "params_count": 400, "method": "lowrank",
                    "facts": {"factorized_layers": factorized}},
        "student_attention": {**base, "teacher": "baseline", "method": "distill_attention",
                              "facts": {"beta": 1000, "kd_weight": 0, "temperature": 10, "pairs": pairs}},
        "student_distilled": {**base, "teacher": "baseline", "method": "distill",
                              "facts": {"labels": 0.1, "teacher": 0.9, "temperature": 10}},
        "student_scratch": base,
    }
    text = report.markdown(report.sections(rows, selection.pareto_front(rows), {}, rows[0], trainings,
                                           predictions_of(metrics), [], CFG, []))
    students = text.split("## Students")[1].split("##")[0]  # the section's table, before every other one
    assert [line for line in students.splitlines() if line.startswith("| student_")] == [
        "| student_scratch | labels only | mobilenetv2 | 200 | 0.9500 (-4.00) | 0.9400 |",
        "| student_distilled | labels x 0.10 + soft targets of `baseline` x 0.90 (Hinton, T 10) | mobilenetv2 | 200 "
        "| 0.9600 (-3.00) | 0.9500 |",
        "| student_attention | labels + attention maps of `baseline` at 2 stage pairs (beta 1000) | mobilenetv2 | 200 "
        "| 0.9700 (-2.00) | 0.9600 |",
    ]
    assert ("`student_distilled` against `student_scratch` (fp32, the same 100 images): +1.00 points, 1 images gained "
            "and 0 lost, McNemar p 1: not significant at 100 images.") in students
    assert ("`student_attention` against `student_scratch` (fp32, the same 100 images): +2.00 points, 2 images gained "
            "and 0 lost, McNemar p 0.5: not significant at 100 images.") in students
    assert ("`student_attention` matched block_3_expand_relu (16x16) with stem_relu (16x16), block_1_expand_relu "
            "(32x32) with stem_relu (16x16)") in text
    assert ("`lowrank`: 1 of 2 Dense / Conv2D kernels split in two by truncated SVD, ranks 4-4, keeping 52%-52% of the "
            "squared singular values; left whole where two layers would not be smaller: logits.") in text


class Page(html.parser.HTMLParser):
    """Collects the headings, table cells and embedded images of a page."""

    def __init__(self):
        super().__init__()
        self.headings, self.cells, self.images, self._tag = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        self._tag = None

    def handle_data(self, data):
        if self._tag in ("h2", "td"):
            (self.headings if self._tag == "h2" else self.cells).append(data)


def parse_page(text):
    page = Page()
    page.feed(text)
    return page


def test_html_page_has_every_section_table_and_figure_as_png():
    content = [report.Section("Pareto front", ["a < b"], ["model"], [["pcqat"]], figures=("scatter",)),
               report.Section("All models", ["text"], ["model", "quant"], [["baseline", "int8"]])]
    page = parse_page(report.html_page(content, {"scatter": b"\x89PNG fake"}))
    assert page.headings == ["Pareto front", "All models"]
    assert page.cells == ["pcqat", "baseline", "int8"]
    assert [img["alt"] for img in page.images] == ["scatter"]
    assert base64.b64decode(page.images[0]["src"].split(",", 1)[1]) == b"\x89PNG fake"


def test_confusion_records_count_one_record_per_test_image():
    records = report.confusion_records([[2, 1], [0, 3]], ["cat", "dog"])
    assert len(records) == 6
    assert records.count({"actual": "cat", "predicted": "dog"}) == 1
    assert records.count({"actual": "dog", "predicted": "dog"}) == 3
    json.dumps(records)


def test_microcontroller_section_shows_the_arena_beside_alternate_memory_and_why_a_file_does_not_run():
    missing = {key: None for key in ("ram_bytes", "flash_bytes", "tflm_accuracy", "tflm_disagreements")}
    metrics = {"baseline": {
        "params_count": 100, "protocol": {"threads": 1},
        "fp32": {"accuracy": 0.99, "tflm": False, "tflm_fault": "TFLM has no kernel for TOPK_V2", **missing},
        "int8": {"accuracy": 0.98, "tflm": True, "tflm_fault": None, "ram_bytes": 37_104, "flash_bytes": 2_879_680,
                 "tflm_accuracy": 0.98, "tflm_disagreements": 0},
        "int8_lut": {"size_bytes": 1_556_000, "gzip_bytes": 651_287, "tflm": True, "tflm_fault": None,
                     "ram_bytes": 621_456, "flash_bytes": 1_556_000, "tflm_accuracy": 0.97, "tflm_disagreements": 1,
                     "alt_memory_bytes": 589_824, "ram_bytes_with_alt": 40_864}}}
    rows = report.micro_rows(metrics)
    assert [(r["variant"], r["source"], r["litert_accuracy"]) for r in rows] == [
        ("fp32", "fp32", 0.99), ("int8", "int8", 0.98), ("int8_lut", "int8", 0.98)]
    assert report.micro_section(rows).table == [
        ["baseline", "fp32", "does not run: TFLM has no kernel for TOPK_V2", "", "", "", "0.9900", ""],
        ["baseline", "int8", "37.1", "", "2,879.7", "0.9800", "0.9800", "0"],
        ["baseline", "int8_lut", "621.5", "589.8 + 40.9", "1,556.0", "0.9700", "0.9800", "1"],
    ]
    assert report.micro_section([]).paragraphs == []  # no file on TFLM (evaluate.micro: []): no section
