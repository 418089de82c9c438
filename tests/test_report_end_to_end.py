"""The report of the tiny end-to-end run, checked against the metrics files it was made from."""
import base64
import json
import re

import numpy as np
import yaml
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from conftest import run, set_param
from edgecompress.core.names import LUT_VARIANT, TFLM_FOLDER, TFLM_ONLY
from edgecompress.measure.runner import TestSplit, quantize, scaled
from edgecompress.report import report_figures
from test_pipeline import metrics_of, model_quants
from test_runner_and_report import parse_page


def read(repo, rel):
    return (repo / rel).read_text()


def md_table(text, title):
    """The rows (lists of cells) of the table under `## title` in a Markdown report."""
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def measured(repo):
    """{(model, quant): (accuracy, gzip bytes, p50 ms, TFLM arena bytes or infinity)} straight from the metrics
    files."""
    found = {}
    for m, q in model_quants(repo):
        metrics = metrics_of(repo, m)[q]
        found[(m, q)] = (metrics["accuracy"], metrics["gzip_bytes"], metrics["latency_p50_ms"],
                         metrics.get("ram_bytes") or float("inf"))
    return found


def test_every_row_of_the_report_matches_its_metrics_file(pipeline):
    table = md_table(read(pipeline, "report/report.md"), "All models")
    assert sorted((r[0], r[1]) for r in table) == sorted(model_quants(pipeline))
    for cells in table:
        m = metrics_of(pipeline, cells[0])[cells[1]]
        assert cells[2] == f"{m['accuracy']:.4f}"
        assert cells[3] == f"{m['accuracy_ci95'][0]:.3f}-{m['accuracy_ci95'][1]:.3f}"
        noise = m["flips_lost"] + m["flips_gained"] and m["mcnemar_p"] > 0.05
        assert cells[4].endswith(" (n.s.)") == bool(noise)
        assert cells[5] == f"{m['flips_lost']} / {m['flips_gained']} ({m['mcnemar_p']:.2g})"
        assert cells[6] == f"{m['size_bytes'] / 1e3:,.1f}" and cells[7] == f"{m['gzip_bytes'] / 1e3:,.1f}"
        assert cells[9] == f"{m['latency_p50_ms']:.3f}"
        assert cells[11] == f"{m['sparsity']:.1%}" and cells[12] == f"{m['max_distinct_per_channel']:,}"
        assert cells[13] == f"{m['litert_ram_bytes'] / 1e3:,.1f}" and m["litert_ram_bytes"] > m["size_bytes"]
        assert cells[14] == (f"{m['ram_bytes'] / 1e3:,.1f}" if m.get("ram_bytes") else "—")
        model = metrics_of(pipeline, cells[0])
        assert cells[16] == f"{model['macs']:,}"
        assert cells[17] == f"{model['macs'] / metrics_of(pipeline, 'baseline')['macs']:.2f}"
        seconds = report_figures.read_curve(pipeline / f"plots/train/{cells[0]}.csv")["seconds"]
        assert cells[18] == f"{sum(seconds) / len(seconds):.2f}"
    baseline = metrics_of(pipeline, "baseline")["fp32"]
    for row in json.loads(read(pipeline, "report/summary.json"))["rows"]:
        m = metrics_of(pipeline, row["model"])[row["quantization"]]
        assert row["accuracy_delta_points"] == round(100 * (m["accuracy"] - baseline["accuracy"]), 4)
        assert row["gzip_compression"] == baseline["gzip_bytes"] / m["gzip_bytes"]


def details_of(repo, model):
    return json.loads(read(repo, f"metrics/details/{model}.json"))


def test_flips_classes_and_forgotten_images_are_the_hand_count_of_the_predictions(pipeline):
    reference = details_of(pipeline, "baseline")
    labels, right = reference["labels"], [p == y for p, y in zip(reference["models"]["fp32"]["predictions"],
                                                                   reference["labels"])]
    assert len(labels) == 360
    flipped, recalls = [0] * len(labels), {}
    for model, quant in model_quants(pipeline):
        details, m = details_of(pipeline, model), metrics_of(pipeline, model)[quant]
        now = [p == y for p, y in zip(details["models"][quant]["predictions"], labels)]
        assert details["labels"] == labels and m["accuracy"] == sum(now) / len(labels)
        assert m["flips_lost"] == sum(r and not n for r, n in zip(right, now))
        assert m["flips_gained"] == sum(n and not r for r, n in zip(right, now))
        assert m["accuracy_ci95"][0] < m["accuracy"] < m["accuracy_ci95"][1] or m["accuracy"] in (0, 1)
        if (model, quant) != ("baseline", "fp32"):
            flipped = [f + (r and not n) for f, r, n in zip(flipped, right, now)]
        recalls[(model, quant)] = details["models"][quant]["recall"]
    summary = json.loads(read(pipeline, "report/summary.json"))
    forgotten = summary["forgotten_images"]
    assert [f["flipped_by"] for f in forgotten] == sorted((f for f in flipped if f), reverse=True)[:len(forgotten)]
    assert all(flipped[f["index"]] == f["flipped_by"] == sum(f["predicted"].values()) for f in forgotten)
    drop = yaml.safe_load(read(pipeline, "params.yaml"))["report"]["class_drop_points"]
    ref = recalls[("baseline", "fp32")]
    damaged = {(m, q, c) for (m, q), recall in recalls.items() for c in recall if 100 * (ref[c] - recall[c]) >= drop}
    assert {(d["model"], d["quantization"], d["class"]) for d in summary["class_damage"]} == damaged


def test_pareto_front_is_exactly_the_undominated_models(pipeline):
    points = measured(pipeline)
    undominated = {f"{m} {q}" for (m, q), p in points.items()
                   if not any(o != p and o[0] >= p[0] and o[1] <= p[1] and o[2] <= p[2] and o[3] <= p[3]
                              for o in points.values())}
    summary = json.loads(read(pipeline, "report/summary.json"))
    assert set(summary["pareto_front"]) == undominated
    text = read(pipeline, "report/report.md")
    assert {f"{r[0]} {r[1]}" for r in md_table(text, "Pareto front")} == undominated
    assert {f"{r[0]} {r[1]}" for r in md_table(text, "All models") if r[-1] == "yes"} == undominated


def test_each_budget_gets_the_best_model_within_its_limits(pipeline):
    budgets = yaml.safe_load(read(pipeline, "params.yaml"))["report"]["budgets"]
    picks = json.loads(read(pipeline, "report/summary.json"))["recommendations"]
    assert list(picks) == list(budgets)
    shown = {(r[0], r[1]) for r in md_table(read(pipeline, "report/report.md"), "Recommendations")}
    points = measured(pipeline)
    fast, reference = budgets["fast"], points[("baseline", "fp32")][0]
    within_fast = [key for key, p in points.items() if p[2] <= fast["max_latency_p50_ms"]
                   and 100 * (reference - p[0]) <= fast["max_loss_points"] + 1e-9]
    assert picks["fast"]["fits"] == bool(within_fast) and within_fast  # the reference itself loses nothing
    fastest = min(points[key][2] for key in within_fast)
    assert points[(picks["fast"]["model"], picks["fast"]["quantization"])][2] == fastest
    for name, pick in picks.items():
        assert (name, pick["text"]) in shown


def test_a_budget_nobody_meets_says_so_and_names_the_closest(pipeline):
    original = set_param(pipeline, "report.budgets.tiny.max_gzip_kb", 0.5)
    try:
        log = run(["dvc", "repro"], pipeline).stdout
        text = read(pipeline, "report/report.md")
    finally:
        (pipeline / "params.yaml").write_text(original)
    assert re.findall(r"Running stage '([^']+)'", log) == ["report"]
    smallest = min(measured(pipeline).items(), key=lambda item: item[1][1])
    (model, quant), (_, gzip_bytes, *_) = smallest
    expected = (f"No model fits (gzip size ≤ 0.5 KB). The closest is {model} {quant}: "
                f"gzip size {gzip_bytes / 1e3:,.1f} KB is")
    assert any(cells == ["tiny", cells[1]] and cells[1].startswith(expected)
               for cells in md_table(text, "Recommendations"))
    run(["dvc", "repro"], pipeline)
    assert "up to date" in run(["dvc", "status"], pipeline).stdout


def reference_kernel_scores(path, test_dir, input_range) -> np.ndarray:
    """The int8 scores LiteRT's reference kernels (those TFLM's are ported from) give every test image; LiteRT's
    default, XNNPACK, rounds otherwise and can flip an image whose top two scores are close."""
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scores = []
    for image, _ in TestSplit(test_dir):
        x = quantize(scaled(image, input_range), inp["dtype"], *inp["quantization"])
        interpreter.set_tensor(inp["index"], x[None])
        interpreter.invoke()
        scores.append(interpreter.get_tensor(out["index"])[0].astype(int))
    return np.array(scores)


def test_every_int8_file_runs_on_tflm_as_on_litert_and_the_report_shows_its_arena_and_flash(pipeline):
    """evaluate.micro's default, int8: every int8 .tflite runs on TensorFlow Lite Micro, predicts what LiteRT's
    reference kernels predict, and its arena, flash and differences from LiteRT in the report are the metrics file's;
    so do the look-up-table variants, smaller in flash, predicting what their int8 file predicts on TFLM."""
    int8 = [(m, q) for m, q in model_quants(pipeline) if q == TFLM_ONLY[LUT_VARIANT]]
    luts = [(m, LUT_VARIANT) for m, _ in int8
            if (pipeline / f"models/{m}/tflite/{TFLM_FOLDER}/{LUT_VARIANT}.tflite").is_file()]
    assert ("pcqat", LUT_VARIANT) in luts  # 16 values per channel: 4-bit indices
    shown = {(r[0], r[1]): r for r in md_table(read(pipeline, "report/report.md"), "On a microcontroller")}
    assert sorted(shown) == sorted(int8 + luts)
    for model, variant in int8 + luts:
        details = details_of(pipeline, model)
        m, micro, labels = metrics_of(pipeline, model)[variant], details["micro"][variant], details["labels"]
        folder = pipeline / f"models/{model}/tflite" / (TFLM_FOLDER if variant in TFLM_ONLY else "")
        arena = micro["arena"]
        assert m["tflm"] and m["ram_bytes"] == arena["total"] == arena["head"] + arena["tail"]
        assert m["flash_bytes"] == m["size_bytes"] == (folder / f"{variant}.tflite").stat().st_size
        source = TFLM_ONLY.get(variant, variant)
        litert, on_litert = metrics_of(pipeline, model)[source], details["models"][source]["predictions"]
        assert m["tflm_disagreements"] == sum(p != q for p, q in zip(micro["predictions"], on_litert))
        assert m["tflm_accuracy"] == sum(p == y for p, y in zip(micro["predictions"], labels)) / len(labels)
        if variant == source:
            scores = reference_kernel_scores(folder / f"{variant}.tflite", pipeline / "data/test",
                                             details["training"]["input_range"])
            top_two = np.sort(scores, axis=1)[:, -2:]
            clear = top_two[:, 1] - top_two[:, 0] > 6  # TFLM's scores are these to within 3 steps
            assert (np.array(micro["predictions"])[clear] == scores.argmax(axis=1)[clear]).all(), model
        alt = (f"{m['alt_memory_bytes'] / 1e3:,.1f} + {m['ram_bytes_with_alt'] / 1e3:,.1f}"
               if variant in TFLM_ONLY else "")
        assert shown[(model, variant)][2:] == [f"{m['ram_bytes'] / 1e3:,.1f}", alt, f"{m['flash_bytes'] / 1e3:,.1f}",
                                               f"{m['tflm_accuracy']:.4f}", f"{litert['accuracy']:.4f}",
                                               str(m["tflm_disagreements"])]
    for model, variant in luts:
        lut, plain = metrics_of(pipeline, model)[variant], metrics_of(pipeline, model)[TFLM_ONLY[variant]]
        assert lut["flash_bytes"] < plain["flash_bytes"] and lut["ram_bytes_with_alt"] < lut["ram_bytes"]
        micro = details_of(pipeline, model)["micro"]
        assert micro[variant]["predictions"] == micro[TFLM_ONLY[variant]]["predictions"]
    assert not any("ram_bytes" in metrics_of(pipeline, m)[q] for m, q in model_quants(pipeline) if (m, q) not in int8)


def test_plot_files_parse_and_dvc_renders_every_plot(pipeline, tmp_path):
    points = json.loads(read(pipeline, "report/compare.json"))
    assert sorted((p["model"], p["quantization"]) for p in points) == sorted(model_quants(pipeline))
    assert sum(p["best_compressed"] for p in points) == 1
    classes = json.loads(read(pipeline, "data/dataset.json"))["classes"]
    for name in ("baseline", "best_compressed"):
        records = json.loads(read(pipeline, f"report/confusion/{name}.json"))
        assert len(records) == 360 and {r["actual"] for r in records} <= set(classes)
    shown = json.loads(run(["dvc", "plots", "show", "--json"], pipeline).stdout)
    assert not shown.get("errors")
    plots = shown["data"]
    assert set(plots) == {"training_curves", "accuracy_vs_gzip", "accuracy_vs_latency", "confusion"}
    curves = plots["training_curves"][0]["content"]["data"]["values"]
    assert {c["model"] for c in curves} == {m for m, _ in model_quants(pipeline)}  # every trained model's curve, one entry
    for name, rendered in plots.items():
        assert rendered[0]["content"]["data"]["values"], name
    run(["dvc", "plots", "show", "-o", str(tmp_path)], pipeline)
    assert "vegaEmbed" in (tmp_path / "index.html").read_text()


def test_html_report_has_the_tables_and_every_figure_as_a_png(pipeline):
    page = parse_page(read(pipeline, "report/report.html"))
    forgotten = json.loads(read(pipeline, "report/summary.json"))["forgotten_images"]
    assert page.headings == ["Reference model", "Students", "What the methods did", "Recommendations",
                             "Best compressed model", "Pareto front", "Per-class damage", "Fine-tuning damage",
                             "On a microcontroller",
                             *["Images compression forgets"] * bool(forgotten), "All models", "Training curves"]
    params_count = json.loads(read(pipeline, "metrics/baseline.json"))["params_count"]
    assert f"`baseline`: resnet18, {params_count:,} parameters, pixels scaled to [0, 1]" in read(pipeline,
                                                                                                "report/report.md")
    kd = json.loads(read(pipeline, "models/filter_pruned_kd/train.json"))["facts"]
    assert "`filter_pruned`: fpgm removed " in read(pipeline, "report/report.md")
    assert (f"`filter_pruned_kd`: distilled from `baseline`, label loss weight {kd['labels']:.3f}, teacher "
            f"{kd['teacher']:.3f}, allocated by paper 004's formula 7") in read(pipeline, "report/report.md")
    assert sorted(img["alt"] for img in page.images) == ["accuracy_vs_gzip", "accuracy_vs_latency", "confusion",
                                                         *["forgotten"] * bool(forgotten), "training_curves"]
    for img in page.images:
        assert base64.b64decode(img["src"].split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    summary = json.loads(read(pipeline, "report/summary.json"))
    for row in summary["rows"]:
        assert f"{row['gzip_bytes'] / 1e3:,.1f}" in page.cells
