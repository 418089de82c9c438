"""End to end: one `dvc repro` on tiny params, then the files, keys and caching it must produce."""
import json
import re

import pytest
import yaml

from conftest import run

QUANTS = ("fp32", "fp16", "dynamic", "int8", "int16x8")
KEYS = ("accuracy", "macro_precision", "macro_recall", "size_bytes", "gzip_bytes",
        "latency_p50_ms", "latency_p90_ms", "latency_mean_ms", "total_s")


def test_metrics_have_every_quantization_and_key(pipeline):
    metrics = json.loads((pipeline / "metrics/baseline.json").read_text())
    assert metrics["params_count"] > 0 and metrics["epoch_seconds"] > 0
    for quant in QUANTS:
        block = metrics[quant]
        assert set(KEYS) <= set(block), quant
        assert 0.0 <= block["accuracy"] <= 1.0
        assert block["size_bytes"] == (pipeline / f"models/baseline/tflite/{quant}.tflite").stat().st_size
        assert 0 < block["gzip_bytes"] < block["size_bytes"]
        assert 0 < block["latency_p50_ms"] <= block["latency_p90_ms"]
        assert block["total_s"] > 0
    assert metrics["protocol"] == {"threads": 1, "warmup": 2, "batch_size": 1, "images": 360}


def test_dvc_metrics_show_reads_flat_keys(pipeline):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], pipeline).stdout)
    data = next(iter(shown.values()))["data"]["metrics/baseline.json"]["data"]
    assert data["int8"]["gzip_bytes"] > 0


def test_details_and_report(pipeline):
    details = json.loads((pipeline / "metrics/details/baseline.json").read_text())
    assert details["classes"] == [str(d) for d in range(10)]
    assert sum(map(sum, details["models"]["int8"]["confusion"])) == 360
    summary = json.loads((pipeline / "metrics/summary.json").read_text())
    assert [(r["model"], r["quantization"]) for r in summary["rows"]] == [("baseline", q) for q in QUANTS]
    report = (pipeline / "metrics/report.md").read_text()
    assert report.count("| baseline |") == len(QUANTS)


def test_training_curve_for_dvc_plots(pipeline):
    lines = (pipeline / "plots/train/baseline.csv").read_text().splitlines()
    assert lines[0].split(",") == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(lines) == 1 + 2


def test_second_repro_is_a_no_op(pipeline):
    assert "up to date" in run(["dvc", "status"], pipeline).stdout


def set_param(repo, section, key, value):
    """Change one param in the repo's params.yaml; return the original text to restore."""
    path = repo / "params.yaml"
    original = path.read_text()
    values = yaml.safe_load(original)
    values[section][key] = value
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return original


@pytest.mark.parametrize("section, key, value, expected", [
    ("evaluate", "threads", 2, {"evaluate@baseline"}),
    ("convert", "representative_samples", 17, {"convert@baseline"}),
    ("train", "epochs", 3, {"train"}),
    ("data", "test_fraction", 0.25, {"prepare"}),
])
def test_status_names_only_the_stages_reading_the_param(pipeline, section, key, value, expected):
    original = set_param(pipeline, section, key, value)
    try:
        assert set(json.loads(run(["dvc", "status", "--json"], pipeline).stdout)) == expected
    finally:
        (pipeline / "params.yaml").write_text(original)


def test_repro_after_a_param_change_reruns_exactly_its_downstream(pipeline):
    original = set_param(pipeline, "convert", "representative_samples", 17)
    try:
        log = run(["dvc", "repro"], pipeline).stdout
    finally:
        (pipeline / "params.yaml").write_text(original)
    ran = set(re.findall(r"Running stage '([^']+)'", log))
    assert ran == {"convert@baseline", "evaluate@baseline", "report"}
    run(["dvc", "repro"], pipeline)  # back to the tiny params: restored from DVC's run cache
    assert "up to date" in run(["dvc", "status"], pipeline).stdout
