import numpy as np
import pytest

from edgecompress import report, runner


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


def block(accuracy, size, gzip, p50, sparsity=0.0, distinct=200):
    return {"accuracy": accuracy, "size_bytes": size, "gzip_bytes": gzip, "latency_p50_ms": p50,
            "sparsity": sparsity, "max_distinct_per_channel": distinct}


def test_rows_are_relative_to_the_fp32_baseline():
    metrics = {
        "baseline": {"params_count": 100, "epoch_seconds": 2.0,
                     "fp32": block(0.99, 4000, 3600, 0.2), "int8": block(0.98, 1000, 720, 0.05, 0.795, 16)},
    }
    rows = report.rows(metrics)
    assert [(r["model"], r["quantization"]) for r in rows] == [("baseline", "fp32"), ("baseline", "int8")]
    int8 = rows[1]
    assert int8["accuracy_delta_points"] == pytest.approx(-1.0)
    assert int8["compression"] == pytest.approx(4.0)
    assert int8["gzip_compression"] == pytest.approx(5.0)
    assert int8["latency_ratio"] == pytest.approx(0.25)
    text = report.markdown(rows)
    assert "| baseline | int8 | 0.9800 | -1.00 | 1.0 | 0.7 | 5.00x | 0.050 | 0.25 | 79.5% | 16 | 100 | 2.00 |" in text
