"""report: read every metrics file in METRICS_DIR (and its details: the predictions per test image), the curves in
CURVES_DIR, the images of TEST_DIR that compression forgets and the searches' results in SEARCH_DIR; write
REPORT_DIR/summary.json, report.md, report.html and the data of `dvc plots`."""
from pathlib import Path

from edgecompress.core import params
from edgecompress import report
from edgecompress.report import report_figures, selection
from edgecompress.core.errors import run_stage
from edgecompress.core.files import atomic_path, read_json, write_json
from edgecompress.measure.compare import REFERENCE
from edgecompress.measure.runner import TestSplit
from edgecompress.report.paired import Predictions
from edgecompress.search import results


def confusion_of(details: dict, row, role):
    """(title, counts, class names) of one model x quantization, from the evaluate details ({model: details})."""
    found = details[row["model"]]
    return f"{role}: {selection.label(row)}", found["models"][row["quantization"]]["confusion"], found["classes"]


def main(metrics_dir, curves_dir, test_dir, search_dir, report_dir):
    cfg = params.load("report", schemas={"report": selection.Report})["report"]
    selection.check_highlight(cfg)
    metrics = report.read_metrics(metrics_dir)
    curves = {model: report_figures.read_curve(Path(curves_dir) / f"{model}.csv") for model in metrics}
    table = report.rows(metrics, {model: report.mean(curve.get("seconds", [])) for model, curve in curves.items()})
    front, picks, best = report.choose(table, cfg["budgets"], cfg["highlight"])
    details = {model: read_json(Path(metrics_dir) / "details" / f"{model}.json") for model in metrics}
    reference = next(row for row in table if selection.row_id(row) == REFERENCE)
    confusions = {"baseline": confusion_of(details, reference, "reference"),
                  "best_compressed": confusion_of(details, best, "best compressed")}
    predictions = Predictions(details)
    forgotten = predictions.forgotten(cfg["forgotten_images"])
    shown = {image["index"] for image in forgotten}
    images = {i: pixels for i, (pixels, _) in enumerate(TestSplit(test_dir)) if i in shown}
    trainings = {model: d["training"] for model, d in details.items()}
    damaged = report.fine_tuning_damage(trainings, cfg["damage_points"])
    micro = report.micro_rows(metrics)
    out = Path(report_dir)
    write_json(out / "summary.json", report.summary(table, front, picks, best, predictions, forgotten,
                                                    cfg["class_drop_points"], damaged, micro))
    write_json(out / "compare.json", report.plot_points(table, front, best))
    write_json(out / "curves.json", report.curve_records(curves))
    for name, (_, counts, classes) in confusions.items():
        write_json(out / "confusion" / f"{name}.json", report.confusion_records(counts, classes))
    searches = [read_json(path) for path in sorted(Path(search_dir).glob("*.json"))]
    content = report.sections(table, front, picks, best, trainings, predictions, forgotten, cfg, damaged, micro)
    content += [results.section(result, picks.get(result["budget"])) for result in searches]
    figures = report_figures.render(table, front, best, curves, confusions, forgotten, images, searches)
    for name, text in (("report.md", report.markdown(content)), ("report.html", report.html_page(content, figures))):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text)
    print(f"report: {(out / 'report.html').resolve()}")


if __name__ == "__main__":
    run_stage(main)
