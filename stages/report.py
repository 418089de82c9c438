"""report: read the metrics files named on the command line; write the summary, report.md / .html and plot data."""
import sys
from pathlib import Path

from edgecompress import params, report, report_figures, selection
from edgecompress.errors import UserError, run_stage
from edgecompress.files import atomic_path, read_json, write_json


def confusion_of(row, role):
    """(title, counts, class names) of one model x quantization, from its evaluate details."""
    details = read_json(f"metrics/details/{row['model']}.json")
    return f"{role}: {selection.label(row)}", details["models"][row["quantization"]]["confusion"], details["classes"]


def main(metrics_files):
    cfg = params.load("cluster", "report")
    budgets, highlight = cfg["report"]["budgets"], cfg["report"]["highlight"]
    if highlight not in budgets:
        raise UserError(f"params: report.highlight = {highlight!r} is not allowed; expected one of the budgets: "
                        f"{', '.join(budgets)}")
    metrics = {Path(f).stem: read_json(f) for f in metrics_files}
    for variant in cfg["cluster"]["variants"]:
        if f"clustered_{variant}" not in metrics:
            raise UserError(f"report: cluster variant {variant!r} has no metrics file on the command line; "
                            f"add metrics/clustered_{variant}.json to the report stage's cmd and deps in dvc.yaml")
    table = report.rows(metrics)
    front = selection.pareto_front(table)
    picks = {name: selection.recommend(table, budget) for name, budget in budgets.items()}
    best = selection.best_compressed(table, front, picks[highlight], report.REFERENCE)
    reference = next(r for r in table if selection.row_id(r) == report.REFERENCE)
    confusions = {"baseline": confusion_of(reference, "reference"),
                  "best_compressed": confusion_of(best, "best compressed")}
    curves = {model: report_figures.read_curve(f"plots/train/{model}.csv") for model in metrics}
    figures = report_figures.render(table, front, best, curves, confusions)
    content = report.sections(table, front, picks, best)
    write_json("plots/compare.json", report.plot_points(table, front, best))
    for name, (_, counts, classes) in confusions.items():
        write_json(f"plots/confusion/{name}.json", report.confusion_records(counts, classes))
    write_json("metrics/summary.json", {
        "reference": dict(zip(("model", "quantization"), report.REFERENCE)), "rows": table,
        "pareto_front": [selection.label(r) for r in front], "recommendations": picks,
        "best_compressed": selection.label(best)})
    for path, text in (("metrics/report.md", report.markdown(content)),
                       ("metrics/report.html", report.html_page(content, figures))):
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    print(f"report: {Path('metrics/report.html').resolve()}")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1:]))
