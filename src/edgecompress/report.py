"""Side-by-side table of every model and quantization, relative to the fp32 baseline."""
from edgecompress.evaluate import QUANT_ORDER

REFERENCE = ("baseline", "fp32")


def rows(metrics_by_model: dict, reference=REFERENCE) -> list:
    """One row per (model, quantization) with ratios to the reference: compression (x smaller), latency."""
    ref = metrics_by_model[reference[0]][reference[1]]
    out = []
    for model, metrics in metrics_by_model.items():
        for quant in (q for q in QUANT_ORDER if q in metrics):
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
                "epoch_seconds": metrics["epoch_seconds"],
            })
    return out


COLUMNS = (
    ("model", "model", "{}"),
    ("quantization", "quant", "{}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("accuracy_delta_points", "Δ acc (points)", "{:+.2f}"),
    ("size_bytes", "size (KB)", "{:,.1f}", 1e-3),
    ("gzip_bytes", "gzip (KB)", "{:,.1f}", 1e-3),
    ("gzip_compression", "gzip x smaller", "{:.2f}x"),
    ("latency_p50_ms", "p50 (ms)", "{:.3f}"),
    ("latency_ratio", "latency / ref", "{:.2f}"),
    ("sparsity", "sparsity", "{:.1%}"),
    ("max_distinct_per_channel", "distinct / channel", "{:,}"),
    ("params_count", "params", "{:,}"),
    ("epoch_seconds", "s / epoch", "{:.2f}"),
)


def markdown(table: list, reference=REFERENCE) -> str:
    """The report as Markdown: one table row per model and quantization."""
    header = [c[1] for c in COLUMNS]
    lines = [
        "# edgecompress report",
        "",
        f"Reference: `{reference[0]}` at `{reference[1]}`. Sizes are the .tflite files; "
        "\"gzip x smaller\" divides the reference's gzipped size by each model's gzipped size. Sparsity (zero "
        "weights over all kernels) and distinct values (the most in any output channel of a clustered kernel, "
        "or of any kernel for unclustered models) are read back from each .tflite file.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in table:
        cells = [fmt.format(row[key] * scale[0]) if scale else fmt.format(row[key])
                 for key, _, fmt, *scale in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
