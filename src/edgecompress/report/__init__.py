"""The report: every model x quantization side by side, the Pareto front, one pick per budget; Markdown and HTML."""
import base64
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from edgecompress.methods import METHODS
from edgecompress.report import selection
from edgecompress.core.errors import UserError
from edgecompress.core.files import read_json
from edgecompress.core.names import CURVE_COLUMNS, LUT_VARIANT, QUANTIZATIONS, TFLM_ONLY
from edgecompress.core.record import damaged_by_fine_tuning
from edgecompress.measure.compare import REFERENCE, described, significant
from edgecompress.measure.tflm import MICRO_KEYS
from edgecompress.report.paired import Predictions
from edgecompress.report.selection import KB


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
                "accuracy_ci95": m["accuracy_ci95"],
                "flips_lost": m["flips_lost"],
                "flips_gained": m["flips_gained"],
                "mcnemar_p": m["mcnemar_p"],
                "size_bytes": m["size_bytes"],
                "gzip_bytes": m["gzip_bytes"],
                "compression": ref["size_bytes"] / m["size_bytes"],
                "gzip_compression": ref["gzip_bytes"] / m["gzip_bytes"],
                "latency_p50_ms": m["latency_p50_ms"],
                "latency_ratio": m["latency_p50_ms"] / ref["latency_p50_ms"],
                "litert_ram_bytes": m["litert_ram_bytes"],
                "sparsity": m["sparsity"],
                "max_distinct_per_channel": m["max_distinct_per_channel"],
                **{key: m.get(key) for key in MICRO_KEYS},  # None where it was not run on TFLM
                "params_count": metrics["params_count"],
                "macs": metrics["macs"],
                "macs_ratio": metrics["macs"] / metrics_by_model[REFERENCE[0]]["macs"],
                "epoch_seconds": epoch_seconds.get(model, 0.0),
            })
    return out


def mean(values) -> float:
    return sum(values) / len(values) if values else 0.0


def delta(row) -> str:
    """The accuracy difference in points, marked "(n.s.)" where McNemar's test finds it not significant."""
    noise = row["flips_lost"] + row["flips_gained"] and not significant(row["mcnemar_p"])
    return f"{row['accuracy_delta_points']:+.2f}" + (" (n.s.)" if noise else "")


def kilobytes(size) -> str:
    """A memory figure in KB; — where it was not measured."""
    return "—" if size is None else f"{size / KB:,.1f}"


# (row field, header, its format: a format string of the field, optionally with a scale, or a function of the row)
COLUMNS = (
    ("model", "model", "{}"),
    ("quantization", "quant", "{}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("accuracy_ci95", "95% interval", "{0[0]:.3f}-{0[1]:.3f}"),
    ("accuracy_delta_points", "Δ acc (points)", delta),
    ("mcnemar_p", "lost / gained (p)", lambda r: f"{r['flips_lost']} / {r['flips_gained']} ({r['mcnemar_p']:.2g})"),
    ("size_bytes", "size = flash (KB)", "{:,.1f}", 1 / KB),
    ("gzip_bytes", "gzip (KB)", "{:,.1f}", 1 / KB),
    ("gzip_compression", "gzip x smaller", "{:.2f}x"),
    ("latency_p50_ms", "p50 (ms)", "{:.3f}"),
    ("latency_ratio", "latency / ref", "{:.2f}"),
    ("sparsity", "sparsity", "{:.1%}"),
    ("max_distinct_per_channel", "distinct / channel", "{:,}"),
    ("litert_ram_bytes", "LiteRT RAM (KB)", lambda r: kilobytes(r["litert_ram_bytes"])),
    ("ram_bytes", "TFLM arena (KB)", lambda r: kilobytes(r["ram_bytes"])),
    ("params_count", "params", "{:,}"),
    ("macs", "MACs", "{:,}"),
    ("macs_ratio", "MACs / ref", "{:.2f}"),
    ("epoch_seconds", "s / epoch", "{:.2f}"),
)


def cells(row) -> list:
    return [fmt(row) if callable(fmt) else fmt.format(row[key] * scale[0]) if scale else fmt.format(row[key])
            for key, _, fmt, *scale in COLUMNS]


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


def summary(table, front, picks, best, predictions: Predictions, forgotten: list, class_drop_points,
            damaged: list, micro: list = ()) -> dict:
    """summary.json: every row, the front, the picks and the best compressed model, by label; the classes damaged,
    the images forgotten, the models their fine-tuning damaged and every file TFLM ran (micro_rows)."""
    return {"reference": dict(zip(("model", "quantization"), REFERENCE)), "rows": table,
            "pareto_front": [selection.label(r) for r in front], "recommendations": picks,
            "best_compressed": selection.label(best),
            "class_damage": [dict(zip(("model", "quantization", "class", "reference_recall", "recall"), d))
                             for d in predictions.class_damage(class_drop_points)],
            "forgotten_images": forgotten, "fine_tuning_damage": damaged, "microcontroller": list(micro)}


def fine_tuning_damage(trainings: dict, points: float) -> list:
    """The fine-tuned models whose validation accuracy fell more than `points` below their upstream model's (both
    measured by their stage in inference mode), with the augmentation they were fine-tuned with."""
    return [{"model": model, "source": t["source"], "upstream_val_accuracy": t["upstream_val_accuracy"],
             "val_accuracy": t["val_accuracy"], "augment": t["augment"]}
            for model, t in trainings.items() if damaged_by_fine_tuning(t, points)]


def fine_tuning_section(damaged: list, points: float) -> Section:
    """The models that `fine_tuning_damage` flags, and what to check."""
    text = (f"Every fine-tuning stage measures its upstream model and its result on the validation split; a model "
            f"that loses more than {points:g} points there (report.damage_points) is flagged: its fine-tuning, not "
            "the compression itself, may have damaged it.")
    if not damaged:
        return Section("Fine-tuning damage", [text + " No model lost that much."])
    return Section("Fine-tuning damage", [
        text + " Check the augmentation (a model fine-tuned with one its upstream never saw loses accuracy on "
        "unaugmented images; a method's `augment` setting overrides the upstream's), the learning rate and the "
        "epochs of:",
    ], ["model", "from", "validation accuracy before", "after", "points", "augmentation"],
        [[d["model"], d["source"], f"{d['upstream_val_accuracy']:.4f}", f"{d['val_accuracy']:.4f}",
          f"{100 * (d['val_accuracy'] - d['upstream_val_accuracy']):+.1f}",
          ", ".join(f"{k} {v}" for k, v in d["augment"].items()) if d["augment"] else "none"] for d in damaged])


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


def against_control(students: list, predictions: Predictions) -> list:
    """For every student after the first (the control), its fp32 accuracy against the control's on the same
    images, and whether the difference is significant."""
    control, images = students[0], len(predictions.labels)
    said = []
    for model in students[1:]:
        if (model, "fp32") not in predictions.by_row or (control, "fp32") not in predictions.by_row:
            continue
        versus = predictions.versus((control, "fp32"), (model, "fp32"))
        said.append(f"`{model}` against `{control}` (fp32, the same {images} images): "
                    f"{described(versus, images)} at {images} images.")
    return said


def students_section(table, trainings: dict, predictions: Predictions) -> Section:
    """The models trained from scratch beside the reference, side by side: the control (labels only) first, then
    the students of a teacher's logits, then those of its attention maps, each compared with the control."""
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
        "Accuracy on the test split, in brackets its difference from the reference in points.",
        *against_control(students, predictions), *pairs,
    ], ["model", "trained on", "architecture", "params", "fp32 accuracy", "int8 accuracy"], rows)


def damage_section(predictions: Predictions, threshold_points: float) -> Section:
    """The classes that a model damages (Hooker et al. 2019): recall this far below the reference's, per class."""
    damaged = predictions.class_damage(threshold_points)
    counts = Counter(predictions.labels.tolist()).values()
    fewest, most = min(counts), max(counts)
    images = f"{fewest}" if fewest == most else f"{fewest} to {most}"
    moves = f"{100 / most:.1f}" if fewest == most else f"{100 / most:.1f} to {100 / fewest:.1f}"
    text = (f"Classes whose recall falls at least {threshold_points:g} points below the reference's "
            f"(report.class_drop_points), even where the overall accuracy holds: a compressed model can keep its "
            f"top line while one class collapses. A class has {images} test images, so one image moves its recall "
            f"by {moves} points.")
    if not damaged:
        return Section("Per-class damage", [text + " No model damages a class this much."])
    worst = {}  # (model, class) -> its quantizations that damage it, the reference's recall, the lowest recall
    for model, quant, name, before, after in damaged:
        quants, _, lowest = worst.get((model, name), ([], before, after))
        worst[(model, name)] = (quants + [quant], before, min(lowest, after))
    return Section("Per-class damage", [text + " One row per model and class (every model x quantization in "
                                               "summary.json), with its lowest recall."],
                   ["model", "class", "quantizations", "reference recall", "lowest recall", "points"],
                   [[model, name, ", ".join(quants), f"{before:.3f}", f"{after:.3f}", f"{100 * (after - before):+.1f}"]
                    for (model, name), (quants, before, after) in worst.items()])


def micro_rows(metrics_by_model: dict) -> list:
    """One row per file TensorFlow Lite Micro ran ({model, variant, source, litert_accuracy} and its TFLM metrics):
    evaluate.micro's variants and the TFLM-only ones, beside the LiteRT accuracy of the file each came from."""
    rows = []
    for model, metrics in metrics_by_model.items():
        for variant in (v for v, block in metrics.items() if isinstance(block, dict) and "tflm" in block):
            source = TFLM_ONLY.get(variant, variant)
            rows.append({"model": model, "variant": variant, "source": source,
                         "litert_accuracy": metrics[source]["accuracy"], **metrics[variant]})
    return rows


def micro_cells(row) -> list:
    """A micro_rows row in the section's columns: its arena, its alternate memory beside an arena, its flash and both
    accuracies, or that it does not run and why."""
    if not row["tflm"]:
        return [row["model"], row["variant"], f"does not run: {row['tflm_fault']}", "", "", "",
                f"{row['litert_accuracy']:.4f}", ""]
    beside = (f"{kilobytes(row['alt_memory_bytes'])} + {kilobytes(row['ram_bytes_with_alt'])}"
              if "alt_memory_bytes" in row else "")
    return [row["model"], row["variant"], kilobytes(row["ram_bytes"]), beside, kilobytes(row["flash_bytes"]),
            f"{row['tflm_accuracy']:.4f}", f"{row['litert_accuracy']:.4f}", str(row["tflm_disagreements"])]


def micro_section(rows) -> Section:
    """Every file TFLM ran: its arena (and beside alternate memory), flash and accuracy, or its fault."""
    return Section("On a microcontroller", [
        "The variants that evaluate.micro names and the int8 files with their kernels stored as look-up tables "
        f"(`{LUT_VARIANT}`, written by TFLM's compressor where the file is smaller; only TFLM runs it), on "
        "TensorFlow Lite Micro (the tflite-micro package: TFLM's interpreter with its reference kernels) over the "
        "test split. Arena: what TFLM's recording allocator used, the tensors alive during inference (planned to "
        "overlap) plus what persists; a board's SRAM holds it besides the firmware's stack and data. A "
        "look-up-table file decodes its kernels at run time into the arena, or, given memory of their own "
        "(alternate memory: the largest decoded kernel, reused op after op), beside a smaller arena. Flash: the "
        ".tflite's bytes, stored as they are (the TFLM library's code comes on top). Accuracy on TFLM beside "
        "LiteRT's on the file it came from, with the number of images the two predict differently: TFLM's "
        "reference kernels round otherwise than LiteRT's optimized ones, which flips an image whose top two scores "
        "are close.",
    ] if rows else [], ["model", "variant", "TFLM arena (KB)", "alternate memory + arena (KB)", "flash (KB)",
                        "TFLM accuracy", "LiteRT accuracy", "images differing"], [micro_cells(r) for r in rows])


def forgotten_section(forgotten: list) -> Section:
    return Section("Images compression forgets", [
        "The test images that the most models x quantizations get wrong where the reference gets them right "
        "(report.forgotten_images; indices into the test split, also in summary.json): above each, its label, how "
        "many models flip it and what they predict.",
    ] if forgotten else [], figures=("forgotten",))


def sections(table, front, picks: dict, best, trainings: dict, predictions: Predictions, forgotten: list,
             cfg: dict, damaged: list, micro: list = ()) -> list:
    """The report's content, independent of the format it is written in."""
    on_front = {selection.row_id(r) for r in front}
    cheaper = predictions.indistinct_from_cheaper(front)
    content = [
        reference_section(trainings),
        students_section(table, trainings, predictions),
        methods_section(trainings),
        Section("Recommendations", [
            "One pick per deployment budget (params: report.budgets): the best model by the budget's preference "
            "among those within all its limits, or the closest miss. KB are 1,000 bytes of the gzipped .tflite; "
            "points are accuracy lost against the reference, tested on the same images (exact McNemar test on the "
            "images one model gets right and the other wrong; significant at p <= 0.05).",
        ], ["budget", "recommendation"], [[name, pick["text"]] for name, pick in picks.items()]),
        Section("Best compressed model", [
            f"{selection.label(best)}: accuracy {best['accuracy']:.4f} ({selection.difference(best)}), "
            f"gzip {best['gzip_bytes'] / KB:,.1f} KB ({best['gzip_compression']:.2f}x smaller), "
            f"p50 {best['latency_p50_ms']:.3f} ms: the pick for the highlighted budget (params: report.highlight), or "
            "the most accurate compressed model on the Pareto front when nothing fits that budget. Confusion matrices "
            "of it and of the reference: in report.html and in `dvc plots show`.",
        ], figures=("confusion",)),
        Section("Pareto front", [
            f"{len(front)} of the {len(table)} models x quantizations are not dominated: no other model is at least "
            "as accurate, as small (gzip), as fast (p50) and as light on a microcontroller's RAM (TFLM arena; a file "
            "not measured on TFLM counts as needing the most), and better in one of them. Sorted by gzip size: the "
            "most accurate model under a size limit is the most accurate of the rows up to that size. "
            f"{len(cheaper)} of them are not significantly more accurate than a smaller one on the front (named in "
            "the last column): on this test split their extra bytes buy nothing measurable.",
        ], [c[1] for c in COLUMNS] + ["no better than"], [cells(r) + [" ".join(cheaper.get(selection.row_id(r), ()))]
                                                          for r in front],
            figures=("accuracy_vs_gzip", "accuracy_vs_latency")),
        damage_section(predictions, cfg["class_drop_points"]),
        fine_tuning_section(damaged, cfg["damage_points"]),
        micro_section(micro),
        forgotten_section(forgotten),
        Section("All models", [
            f"Reference: `{REFERENCE[0]}` at `{REFERENCE[1]}`. Accuracy with its 95% interval (Wilson's score "
            "interval over the test images); \"lost / gained\": the images the model gets wrong where the reference "
            "is right and the reverse, with the exact McNemar test's p; a difference marked (n.s.) is not "
            "significant (p > 0.05): noise at this test split's size. Sizes are the .tflite files; \"gzip x "
            "smaller\" divides the reference's gzipped size by each model's gzipped size. Sparsity (zero weights over "
            "all kernels) and distinct values (the most in any output channel of a clustered kernel, or of any kernel "
            "for unclustered models) are read back from each .tflite file. MACs (multiply-accumulates per image) "
            "are counted on each saved model's graph: weights pruned to zero are still multiplied, so sparse models "
            "keep the reference's MACs; only removed filters (filter pruning) or a smaller network lower them. LiteRT "
            "RAM: what the model adds to a process on the evaluating device (LiteRT's arena, its tensors and "
            "XNNPACK's packed weights after one invoke, measured in a fresh process, plus the mapped .tflite; the "
            "runtime's own code left out). TFLM arena: the RAM TensorFlow Lite Micro needs (section \"On a "
            "microcontroller\"; — where not measured there).",
        ], [c[1] for c in COLUMNS] + ["Pareto"], [cells(r) + ["yes" if selection.row_id(r) in on_front else ""]
                                                    for r in table]),
        Section("Training curves", ["Loss and accuracy per epoch of every training stage (plots/train/<model>.csv)."],
                figures=("training_curves",)),
    ]
    return [section for section in content if section.paragraphs]


def section_markdown(section: Section) -> str:
    lines = [f"## {section.title}", ""]
    for paragraph in section.paragraphs:
        lines += [paragraph, ""]
    if section.header:
        lines.append("| " + " | ".join(section.header) + " |")
        lines.append("|" + "|".join("---" for _ in section.header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in section.table]
        lines.append("")
    return "\n".join(lines)


def markdown(content: list) -> str:
    return "\n".join(["# edgecompress report", "", *(section_markdown(section) for section in content)])


def html_page(content: list, figures: dict) -> str:
    """The same Markdown rendered by markdown-it (raw HTML off), with the figures embedded as PNG images after their
    sections: one file to open, mail or archive."""
    render = MarkdownIt("commonmark", {"html": False}).enable("table").render
    body = []
    for section in content:
        body.append(render(section_markdown(section)))
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
