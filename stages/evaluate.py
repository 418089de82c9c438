"""evaluate@<model>: run every .tflite of the model on the test split, here or on the device that
evaluate.device names; write metrics/<model>.json + details."""
import sys

from edgecompress import evaluate, params, remote, runner
from edgecompress.errors import run_stage
from edgecompress.files import read_json, write_json


def main(model_name):
    cfg = params.load("evaluate")["evaluate"]
    model_dir = f"models/{model_name}/tflite"
    train_record = read_json(f"models/{model_name}/train.json")
    classes = read_json("data/dataset.json")["classes"]
    protocol = (model_dir, "data/test.npz", cfg["threads"], cfg["warmup"], cfg["runs"])
    if cfg["device"] == "local":
        run = runner.run_folder(*protocol)
    else:
        device = remote.Device(cfg["device"], cfg["python"], cfg["connect_timeout"], cfg["run_timeout"],
                               cfg["ssh_options"])
        run = device.run_folder(*protocol)
    metrics, details = evaluate.summarize(run, model_dir, train_record, classes)
    write_json(f"metrics/details/{model_name}.json", details)
    write_json(f"metrics/{model_name}.json", metrics)
    for quant in run["models"]:
        print(f"{model_name} {quant}: accuracy {metrics[quant]['accuracy']:.4f}, "
              f"p50 {metrics[quant]['latency_p50_ms']:.3f} ms")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1]))
