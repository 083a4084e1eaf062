# The two README commands: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test web worker sweeper lint format bench migrate demo clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

# torch first and pinned: that exact CPU build installs from local disk in seconds (TRL-NOTES.md).
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --noinput --verbosity 0

demo: migrate
	$(PY) manage.py bootstrap_demo --url http://127.0.0.1:$(PORT)/

run: demo
	bin/run-local

# --limit-request-line 8190 (gunicorn's most): README "Limits" says why, everywhere gunicorn starts.
web: $(VENV)/.installed
	$(VENV)/bin/gunicorn feedback_app.wsgi --bind 127.0.0.1:$(PORT) --workers 2 --threads 16 --limit-request-line 8190

# Two workers, as compose's `worker` and `trainer`: quick work, and training in its own process
# (bin/workers). The pool and child recycling come from settings (docs/architecture.md,
# "Workers and lost children"); bin/supervise starts each again if it is killed.
worker: $(VENV)/.installed
	bin/workers

# The job sweep, in its own process so that a wedged or dead worker cannot stop it.
sweeper: $(VENV)/.installed
	bin/supervise $(PY) manage.py sweep_jobs

test: $(VENV)/.installed-dev
	bin/test

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Each prints its table; results are recorded in docs/benchmarks.md. Minutes each.
# Every script also takes --smoke (seconds, tiny sizes, no speed): `make test` runs them all
# (tests/test_bench_smoke.py, tests/training/test_bench_training.py), so none can rot unseen.
bench: $(VENV)/.installed-dev
	$(PY) bench/annotate.py
	$(PY) bench/loop.py
	$(PY) bench/export.py
	$(PY) bench/archive.py
	$(PY) bench/training.py
	$(PY) bench/shown.py
	$(PY) bench/input_checks.py
	$(PY) bench/first_run.py

clean:
	rm -rf $(VENV) var .cache
