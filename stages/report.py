"""report: read the metrics files named on the command line; write metrics/summary.json and report.md."""
import sys
from pathlib import Path

from edgecompress import params, report
from edgecompress.errors import UserError, run_stage
from edgecompress.files import atomic_path, read_json, write_json


def main(metrics_files):
    metrics = {Path(f).stem: read_json(f) for f in metrics_files}
    for variant in params.load("cluster")["cluster"]["variants"]:
        if f"clustered_{variant}" not in metrics:
            raise UserError(f"report: cluster variant {variant!r} has no metrics file on the command line; "
                            f"add metrics/clustered_{variant}.json to the report stage's cmd and deps in dvc.yaml")
    table = report.rows(metrics)
    write_json("metrics/summary.json", {"reference": dict(zip(("model", "quantization"), report.REFERENCE)),
                                        "rows": table})
    with atomic_path("metrics/report.md") as tmp:
        tmp.write_text(report.markdown(table))
    print(f"report: {Path('metrics/report.md').resolve()}")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1:]))
