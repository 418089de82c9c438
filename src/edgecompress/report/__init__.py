"""The report: every model x quantization side by side, the Pareto front, one pick per budget; Markdown and HTML."""
import base64
import html
from dataclasses import dataclass
from pathlib import Path

from edgecompress.methods import METHODS
from edgecompress.report import selection
from edgecompress.core.errors import UserError
from edgecompress.core.files import read_json
from edgecompress.core.names import CURVE_COLUMNS, QUANTIZATIONS
from edgecompress.report.selection import KB, REFERENCE


def read_metrics(folder) -> dict:
    """Every model's metrics file in `folder` ({model: metrics}): the reference first, then by name."""
    found = {path.stem: read_json(path) for path in sorted(Path(folder).glob("*.json"))}
    if REFERENCE[0] not in found:
        raise UserError(f"report: {Path(folder) / REFERENCE[0]}.json is missing: the reference model "
                        f"{REFERENCE[0]!r} must be evaluated first (dvc repro)")
    return {REFERENCE[0]: found.pop(REFERENCE[0]), **found}


def rows(metrics_by_model: dict, epoch_seconds: dict) -> list:
    """One row per (model, quantization) with ratios to the reference: compression (x smaller), latency; with the
    mean seconds per training epoch of each model (`epoch_seconds`, from its curve; 0 where it was not trained)."""
    ref = metrics_by_model[REFERENCE[0]][REFERENCE[1]]
    out = []
    for model, metrics in metrics_by_model.items():
        for quant in (q for q in QUANTIZATIONS if q in metrics):
            m = metrics[quant]
            out.append({
                "model": model,
                "quantization": quant,
                "accuracy": m["accuracy"],
                "accuracy_delta_points": round(100 * (m["accuracy"] - ref["accuracy"]), 4),
                "size_bytes": m["size_bytes"],
                "gzip_bytes": m["gzip_bytes"],
                "compression": ref["size_bytes"] / m["size_bytes"],
                "gzip_compression": ref["gzip_bytes"] / m["gzip_bytes"],
                "latency_p50_ms": m["latency_p50_ms"],
                "latency_ratio": m["latency_p50_ms"] / ref["latency_p50_ms"],
                "sparsity": m["sparsity"],
                "max_distinct_per_channel": m["max_distinct_per_channel"],
                "params_count": metrics["params_count"],
                "macs": metrics["macs"],
                "macs_ratio": metrics["macs"] / metrics_by_model[REFERENCE[0]]["macs"],
                "epoch_seconds": epoch_seconds.get(model, 0.0),
            })
    return out


def mean(values) -> float:
    return sum(values) / len(values) if values else 0.0


COLUMNS = (
    ("model", "model", "{}"),
    ("quantization", "quant", "{}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("accuracy_delta_points", "Δ acc (points)", "{:+.2f}"),
    ("size_bytes", "size (KB)", "{:,.1f}", 1 / KB),
    ("gzip_bytes", "gzip (KB)", "{:,.1f}", 1 / KB),
    ("gzip_compression", "gzip x smaller", "{:.2f}x"),
    ("latency_p50_ms", "p50 (ms)", "{:.3f}"),
    ("latency_ratio", "latency / ref", "{:.2f}"),
    ("sparsity", "sparsity", "{:.1%}"),
    ("max_distinct_per_channel", "distinct / channel", "{:,}"),
    ("params_count", "params", "{:,}"),
    ("macs", "MACs", "{:,}"),
    ("macs_ratio", "MACs / ref", "{:.2f}"),
    ("epoch_seconds", "s / epoch", "{:.2f}"),
)


def cells(row) -> list:
    return [fmt.format(row[key] * scale[0]) if scale else fmt.format(row[key]) for key, _, fmt, *scale in COLUMNS]


@dataclass
class Section:
    title: str
    paragraphs: list
    header: list = ()
    table: list = ()      # rows of cell strings
    figures: tuple = ()   # names of figures shown in the HTML report


def choose(table, budgets: dict, highlight: str):
    """(Pareto front, one pick per budget, the best compressed model) of the report's rows."""
    front = selection.pareto_front(table)
    picks = {name: selection.recommend(table, budget) for name, budget in budgets.items()}
    return front, picks, selection.best_compressed(table, front, picks[highlight], REFERENCE)


def summary(table, front, picks, best) -> dict:
    """summary.json: every row, the front, the picks and the best compressed model, by label."""
    return {"reference": dict(zip(("model", "quantization"), REFERENCE)), "rows": table,
            "pareto_front": [selection.label(r) for r in front], "recommendations": picks,
            "best_compressed": selection.label(best)}


def reference_section(trainings: dict) -> Section:
    """What the reference model is (architecture or file, parameters, input range) and, for every model, the
    layers with weights that its method left as they are. `trainings`: each model's training record."""
    ref = trainings[REFERENCE[0]]
    low, high = ref["input_range"]
    text = (f"`{REFERENCE[0]}`: {ref['architecture']}, {ref['params_count']:,} parameters, pixels scaled to "
            f"[{low:g}, {high:g}] (train.input_range) in every stage")
    if ref["initial_weights"]:
        text += f"; started from {ref['initial_weight_layers']} layers of {ref['initial_weights']}"
    left = [[model, ", ".join(t["unsupported_layers"])] for model, t in trainings.items() if t["unsupported_layers"]]
    if not left:
        return Section("Reference model", [text + "."])
    return Section("Reference model", [
        text + ". Layers with weights that a model's method left as they are (it cannot wrap them, or they hold "
        "too few weights):",
    ], ["model", "layers left as they are"], left)


def methods_section(trainings: dict) -> Section:
    """What each compression method did to its models, in its own words (`Method.describe`), where it says."""
    said = (METHODS[t["method"]].describe(model, t) for model, t in trainings.items() if t["method"] in METHODS)
    return Section("What the methods did", [text for text in said if text])


def _trained_on(training: dict) -> str:
    """How a student learned: from the labels alone, or with what it took from its teacher."""
    facts = training["facts"]
    if training["method"] == "distill_attention":
        text = (f"labels + attention maps of `{training['teacher']}` at {len(facts['pairs'])} stage pairs "
                f"(beta {facts['beta']:g})")
        return text + (f" + Hinton's loss x {facts['kd_weight']:g}" if facts["kd_weight"] else "")
    if training["method"] == "distill":
        return (f"labels x {facts['labels']:.2f} + soft targets of `{training['teacher']}` x "
                f"{facts['teacher']:.2f} (Hinton, T {facts['temperature']:g})")
    return "labels only"


def students_section(table, trainings: dict) -> Section:
    """The models trained from scratch beside the reference, side by side: the control (labels only) first, then
    the students of a teacher's logits, then those of its attention maps."""
    order = ("train_student", "distill", "distill_attention")  # labels only first
    students = sorted((m for m, t in trainings.items() if m != REFERENCE[0] and t["source"] is None),
                      key=lambda m: order.index(trainings[m]["method"]))
    if not students:
        return Section("Students", [])
    accuracy = {(r["model"], r["quantization"]): r for r in table}
    rows = []
    for model in students:
        fp32, int8 = accuracy.get((model, "fp32")), accuracy.get((model, "int8"))
        rows.append([model, _trained_on(trainings[model]), trainings[model]["architecture"],
                     f"{trainings[model]['params_count']:,}",
                     f"{fp32['accuracy']:.4f} ({fp32['accuracy_delta_points']:+.2f})" if fp32 else "",
                     f"{int8['accuracy']:.4f}" if int8 else ""])
    pairs = [f"`{model}` matched " + ", ".join(
        f"{p['student']} ({'x'.join(map(str, p['student_size']))}) with {p['teacher']} "
        f"({'x'.join(map(str, p['teacher_size']))})" for p in trainings[model]["facts"]["pairs"])
        + "; the larger map of a pair is average-pooled to the smaller's size."
        for model in students if trainings[model]["method"] == "distill_attention"]
    return Section("Students", [
        "Models trained from scratch beside the reference: the same student (architecture, width, input size, initial "
        "weights, epochs, optimizer and schedule) from the labels alone and with what it takes from its teacher. "
        "Accuracy on the test split, in brackets its difference from the reference in points.", *pairs,
    ], ["model", "trained on", "architecture", "params", "fp32 accuracy", "int8 accuracy"], rows)


def sections(table, front, picks: dict, best, trainings: dict) -> list:
    """The report's content, independent of the format it is written in."""
    on_front = {selection.row_id(r) for r in front}
    content = [
        reference_section(trainings),
        students_section(table, trainings),
        methods_section(trainings),
        Section("Recommendations", [
            "One pick per deployment budget (params: report.budgets): the best model by the budget's preference "
            "among those within all its limits, or the closest miss. KB are 1,000 bytes of the gzipped .tflite; "
            "points are accuracy lost against the reference.",
        ], ["budget", "recommendation"], [[name, pick["text"]] for name, pick in picks.items()]),
        Section("Best compressed model", [
            f"{selection.label(best)}: accuracy {best['accuracy']:.4f} ({best['accuracy_delta_points']:+.2f} points), "
            f"gzip {best['gzip_bytes'] / KB:,.1f} KB ({best['gzip_compression']:.2f}x smaller), "
            f"p50 {best['latency_p50_ms']:.3f} ms: the pick for the highlighted budget (params: report.highlight), or "
            "the most accurate compressed model on the Pareto front when nothing fits that budget. Confusion matrices "
            "of it and of the reference: in report.html and in `dvc plots show`.",
        ], figures=("confusion",)),
        Section("Pareto front", [
            f"{len(front)} of the {len(table)} models x quantizations are not dominated: no other model is at least "
            "as accurate, as small (gzip) and as fast (p50), and better in one of them. Sorted by gzip size: the "
            "most accurate model under a size limit is the most accurate of the rows up to that size.",
        ], [c[1] for c in COLUMNS], [cells(r) for r in front], figures=("accuracy_vs_gzip", "accuracy_vs_latency")),
        Section("All models", [
            f"Reference: `{REFERENCE[0]}` at `{REFERENCE[1]}`. Sizes are the .tflite files; \"gzip x smaller\" "
            "divides the reference's gzipped size by each model's gzipped size. Sparsity (zero weights over all "
            "kernels) and distinct values (the most in any output channel of a clustered kernel, or of any kernel "
            "for unclustered models) are read back from each .tflite file. MACs (multiply-accumulates per image) "
            "are counted on each saved model's graph: weights pruned to zero are still multiplied, so sparse models "
            "keep the reference's MACs; only removed filters (filter pruning) or a smaller network lower them.",
        ], [c[1] for c in COLUMNS] + ["Pareto"], [cells(r) + ["yes" if selection.row_id(r) in on_front else ""]
                                                    for r in table]),
        Section("Training curves", ["Loss and accuracy per epoch of every training stage (plots/train/<model>.csv)."],
                figures=("training_curves",)),
    ]
    return [section for section in content if section.paragraphs]


def markdown(content: list) -> str:
    lines = ["# edgecompress report", ""]
    for section in content:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        if section.header:
            lines.append("| " + " | ".join(section.header) + " |")
            lines.append("|" + "|".join("---" for _ in section.header) + "|")
            lines += ["| " + " | ".join(row) + " |" for row in section.table]
            lines.append("")
    return "\n".join(lines)


def html_page(content: list, figures: dict) -> str:
    """A static page with the figures embedded as PNG images: one file to open, mail or archive."""
    body = []
    for section in content:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        if section.header:
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in section.header) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in section.table]
            body.append("</table>")
        body += [f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(figures[name]).decode()}">'
                 for name in section.figures]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%;display:block}")
    head = f"<head><meta charset=\"utf-8\"><title>edgecompress report</title><style>{style}</style></head>"
    return f"<!DOCTYPE html>\n<html>{head}<body>\n<h1>edgecompress report</h1>\n" + "\n".join(body) + "\n</body></html>\n"


def plot_points(table, front, best) -> list:
    """One record per model x quantization for the accuracy-vs-size and accuracy-vs-latency scatter plots."""
    on_front = {selection.row_id(r) for r in front}
    return [{"model": r["model"], "quantization": r["quantization"], "accuracy": r["accuracy"],
             "gzip_kb": r["gzip_bytes"] / KB, "latency_p50_ms": r["latency_p50_ms"],
             "pareto": selection.row_id(r) in on_front,
             "best_compressed": r is best} for r in table]


def confusion_records(counts, classes) -> list:
    """A confusion matrix as one {actual, predicted} record per test image: the input of DVC's confusion plot."""
    return [{"actual": classes[i], "predicted": classes[j]}
            for i, row in enumerate(counts) for j, count in enumerate(row) for _ in range(count)]


def curve_records(curves: dict) -> list:
    """Every training curve ({model: {column: [values]}}) as one record per model and epoch, for `dvc plots`.

    Records keep the columns every curve has (DVC plots only records that share their keys).
    """
    return [{"model": model, **{column: curve[column][i] for column in CURVE_COLUMNS}}
            for model, curve in curves.items() for i in range(len(curve.get("epoch", ())))]
