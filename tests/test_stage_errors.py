"""Bad params stop a stage before any work: one line naming key, value and what is allowed; exit 2; no output."""
import pytest

from conftest import ROOT, run, write_params

CASES = [
    ("prepare.py", [], {"data": {"source": "imagenet"}}, ["data.source", "'imagenet'", "digits"], "data"),
    ("prepare.py", [], {"data": {"image_size": 16}}, ["data.image_size", "16", ">= 32"], "data"),
    ("train.py", [], {"train": {"epochs": 0}}, ["train.epochs", "0", ">= 1"], "models"),
    ("convert.py", ["baseline"], {"convert": {"quantizations": ["fp32", "int4"]}},
     ["convert.quantizations", "int4", "fp32, fp16, dynamic, int8, int16x8"], "models"),
    ("evaluate.py", ["baseline"], {"evaluate": {"threads": 0}}, ["evaluate.threads", ">= 1"], "metrics"),
    ("train.py", [], {"train": {"epocs": 3}}, ["train.epocs is not a known key"], "models"),
]


@pytest.mark.parametrize("script, args, override, words, output_dir", CASES)
def test_bad_param_is_one_clear_line(tmp_path, script, args, override, words, output_dir):
    write_params(tmp_path, override)
    result = run(["python", str(ROOT / "stages" / script), *args], tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / output_dir).exists()
