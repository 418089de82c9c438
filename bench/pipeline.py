"""Benchmark the pipeline on a fresh clone of HEAD with the default params.

Prints the wall time of a from-scratch `dvc repro` (target < 15 min on 2 cores), of a no-op `dvc repro`
(target < 10 s), the baseline's accuracies and int8 / fp32 latency ratio (target <= 0.4), and how much
smaller gzipped pcqat's int8 model (target >= 12x, <= 1.5 points lost) and the clustered models
(target >= 3x) are than the baseline's fp32 model.
Run it with `make bench`: the venv's python and dvc must be first on PATH.
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args, cwd) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgecompress-bench-") as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
        full = timed(["dvc", "repro"], repo)
        noop = timed(["dvc", "repro"], repo)
        metrics = {path.stem: json.loads(path.read_text()) for path in (repo / "metrics").glob("*.json")}
    fp32, int8 = metrics["baseline"]["fp32"], metrics["baseline"]["int8"]
    ratio = int8["latency_p50_ms"] / fp32["latency_p50_ms"]
    print(f"from-scratch dvc repro: {full:7.1f} s   (target < 900 s)")
    print(f"no-op dvc repro:        {noop:7.1f} s   (target < 10 s)")
    print(f"baseline fp32: accuracy {fp32['accuracy']:.4f}, p50 {fp32['latency_p50_ms']:.4f} ms")
    print(f"baseline int8: accuracy {int8['accuracy']:.4f}, p50 {int8['latency_p50_ms']:.4f} ms")
    print(f"int8 / fp32 latency ratio: {ratio:.3f}   (target <= 0.4)")
    print(f"int8 accuracy loss: {100 * (fp32['accuracy'] - int8['accuracy']):+.2f} points   (target <= 1)")
    pcqat = metrics["pcqat"]["int8"]
    pcqat_ratio, pcqat_loss = fp32["gzip_bytes"] / pcqat["gzip_bytes"], 100 * (fp32["accuracy"] - pcqat["accuracy"])
    print(f"pcqat int8: {pcqat_ratio:.1f}x smaller gzipped (target >= 12), {pcqat_loss:+.2f} points lost "
          f"(target <= 1.5), sparsity {pcqat['sparsity']:.3f}, <= {pcqat['max_distinct_per_channel']} values/channel")
    for name in sorted(m for m in metrics if m.startswith("clustered_")):
        ratios = ", ".join(f"{quant} {fp32['gzip_bytes'] / block['gzip_bytes']:.1f}x"
                           for quant, block in metrics[name].items() if isinstance(block, dict) and "gzip_bytes" in block)
        print(f"{name} gzipped vs baseline fp32 gzipped (target >= 3x): {ratios}")
    met = full < 900 and noop < 10 and ratio <= 0.4 and pcqat_ratio >= 12 and pcqat_loss <= 1.5
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
