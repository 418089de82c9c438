# The whole set-up: `make run` (pipeline) and `make test` (suite) on a machine with Python 3.11 and git.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv run search test bench bench-prepare bench-scale clean

venv: $(STAMP)

$(STAMP): requirements.lock requirements-search.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.lock -r requirements-search.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

# `dvc repro` on $(JOBS) lanes: independent stages side by side (src/edgecompress/tools/lanes.py)
JOBS ?= 2
run: venv
	python -m edgecompress.tools.lanes --jobs $(JOBS)
	@echo "report: $(CURDIR)/report/report.html"

# an Optuna study for one budget of report.budgets, each trial a DVC experiment (src/edgecompress/search)
BUDGET ?= tiny
search: venv
	python -m edgecompress.search $(BUDGET) $(if $(TRIALS),--trials $(TRIALS)) $(if $(SEARCH_JOBS),--jobs $(SEARCH_JOBS)) \
	  $(if $(STORAGE),--storage $(STORAGE))

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
