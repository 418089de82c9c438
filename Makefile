# The whole set-up: `make run` (pipeline) and `make test` (suite) on a machine with Python 3.11 and git.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv run test bench bench-prepare bench-scale clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

# `dvc repro` on $(JOBS) lanes: independent stages side by side (src/edgecompress/tools/lanes.py)
JOBS ?= 2
run: venv
	python -m edgecompress.tools.lanes --jobs $(JOBS)
	@echo "report: $(CURDIR)/report/report.html"

# two workers (pytest-xdist): the tests on the tiny end-to-end pipeline on one, all the others on the other
test: venv
	pytest -n 2 --dist loadgroup

bench: venv
	python bench/pipeline.py

bench-prepare: venv
	python bench/prepare.py

bench-scale: venv
	python bench/scale.py

clean:
	rm -rf $(VENV)
