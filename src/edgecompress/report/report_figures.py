"""The report's figures as PNG bytes: training curves, accuracy against gzip size and latency, confusion matrices,
thumbnails of the images compression forgets."""
import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from edgecompress.report import selection  # noqa: E402
from edgecompress.core.names import QUANTIZATIONS  # noqa: E402
from edgecompress.report.selection import KB  # noqa: E402

MARKERS = dict(zip(QUANTIZATIONS, "osD^v"))
CURVES = ("loss", "accuracy", "val_accuracy")


def read_curve(path) -> dict:
    """A training history CSV (one row per epoch) as {column: [values]}."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {column: [float(row[column]) for row in rows] for column in rows[0]} if rows else {}


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def colors(models) -> dict:
    cmap = plt.get_cmap("tab20")
    return {model: cmap(i % cmap.N) for i, model in enumerate(models)}


def training_curves(curves: dict) -> bytes:
    fig, axes = plt.subplots(1, len(CURVES), figsize=(15, 4))
    color = colors(curves)
    for ax, column in zip(axes, CURVES):
        for model, curve in curves.items():
            if column in curve:
                ax.plot(curve["epoch"], curve[column], marker=".", color=color[model], label=model)
        ax.set(title=column, xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8, loc="lower right")
    return png(fig)


def tradeoff(table, front, best, field: str, xlabel: str) -> bytes:
    """Accuracy against `field` (log scale): one point per model x quantization, the front outlined."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    color = colors(dict.fromkeys(r["model"] for r in table))
    on_front = {selection.row_id(r) for r in front}
    scale = 1 / KB if field.endswith("bytes") else 1
    for r in table:
        edge = "black" if selection.row_id(r) in on_front else "none"
        ax.scatter(r[field] * scale, r["accuracy"], color=color[r["model"]], marker=MARKERS[r["quantization"]],
                   s=60, edgecolors=edge, linewidths=1.2)
    ax.annotate(f"best compressed: {best['model']} {best['quantization']}", (best[field] * scale, best["accuracy"]),
                xytext=(10, -25), textcoords="offset points", arrowprops={"arrowstyle": "->"}, fontsize=9)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=m) for m, c in color.items()]
    handles += [plt.Line2D([], [], color="grey", marker=mk, linestyle="", label=q) for q, mk in MARKERS.items()]
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set(xscale="log", xlabel=xlabel, ylabel="accuracy",
           title=f"Accuracy against {xlabel} (black outline: Pareto front)")
    ax.grid(alpha=0.3, which="both")
    return png(fig)


def search_front(table, front, result: dict) -> bytes:
    """A search's trials (each at the file its budget picked) beside the fixed menu's models and its front, accuracy
    against gzip size; the budget's size limit, if it has one, as a line."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    ax.scatter([r["gzip_bytes"] / KB for r in table], [r["accuracy"] for r in table], color="lightgrey",
               label="the menu (params.yaml's models)")
    ordered = sorted(front, key=lambda r: r["gzip_bytes"])
    ax.plot([r["gzip_bytes"] / KB for r in ordered], [r["accuracy"] for r in ordered], color="grey",
            drawstyle="steps-post", label="the menu's Pareto front")
    done = [t for t in result["trials"] if t["state"] == "COMPLETE"]
    ax.scatter([t["gzip_kb"] for t in done], [t["accuracy"] for t in done], color="tab:blue", label="trials")
    for t in done:
        ax.annotate(str(t["number"]), (t["gzip_kb"], t["accuracy"]), xytext=(4, 4), textcoords="offset points",
                    fontsize=8)
    if result["pick"]:
        ax.scatter([result["pick"]["gzip_kb"]], [result["pick"]["accuracy"]], marker="*", s=250, color="tab:red",
                   label=f"pick: trial {result['pick']['number']}", zorder=3)
    if "max_gzip_kb" in result["limits"]:
        ax.axvline(result["limits"]["max_gzip_kb"], color="tab:red", linestyle="--", label="the budget's gzip limit")
    ax.set(xscale="log", xlabel="gzip size (KB)", ylabel="accuracy",
           title=f"Search for the {result['budget']} budget: trials beside the menu")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    return png(fig)


def confusion_matrices(matrices) -> bytes:
    """Side-by-side confusion matrices, each (title, counts, class names); rows: true class, columns: predicted."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.5 * len(matrices), 5), squeeze=False)
    for ax, (title, counts, classes) in zip(axes[0], matrices):
        ax.imshow(counts, cmap="Blues")
        darkest = max(map(max, counts))
        for i, row in enumerate(counts):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, count, ha="center", va="center", fontsize=7,
                            color="white" if count > darkest / 2 else "black")
        ax.set(title=title, xlabel="predicted", ylabel="true", xticks=range(len(classes)), yticks=range(len(classes)))
        ax.set_xticklabels(classes, rotation=90, fontsize=7)
        ax.set_yticklabels(classes, fontsize=7)
    return png(fig)


def thumbnails(forgotten: list, images: dict, per_row: int = 8) -> bytes:
    """The forgotten test images ({index: uint8 array}), each titled with its label, the number of models that flip
    it and their commonest wrong prediction."""
    rows = max(1, -(-len(forgotten) // per_row))
    fig, axes = plt.subplots(rows, per_row, figsize=(1.6 * per_row, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image in zip(axes.ravel(), forgotten):
        pixels = images[image["index"]]
        ax.imshow(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, cmap="gray", interpolation="nearest")
        said, times = max(image["predicted"].items(), key=lambda item: item[1])
        ax.set_title(f"#{image['index']} true {image['label']}\n{image['flipped_by']} flip it; {times}x {said}",
                     fontsize=7)
    return png(fig)


def render(table, front, best, curves: dict, confusions: dict, forgotten: list, images: dict,
           searches: list = ()) -> dict:
    """Every figure of the HTML report, by name; `confusions` maps names to (title, counts, class names);
    `images`: the forgotten test images' pixels by index; `searches`: the search results (search/<budget>.json)."""
    return {
        **{f"search_{result['budget']}": search_front(table, front, result) for result in searches},
        "training_curves": training_curves(curves),
        "accuracy_vs_gzip": tradeoff(table, front, best, "gzip_bytes", "gzip size (KB)"),
        "accuracy_vs_latency": tradeoff(table, front, best, "latency_p50_ms", "p50 latency (ms)"),
        "confusion": confusion_matrices(list(confusions.values())),
        "forgotten": thumbnails(forgotten, images),
    }
