# The README's commands. Each one creates .venv and installs the pinned requirements first.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-slurm test-fast lint clean

$(STAMP): requirements.txt requirements-run.txt
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

## The first run: dnc_sac and qmp_dnc side by side on three pendulum tasks (a few minutes), then a per-task
## summary and curves (examples/first_run.py; results in data/quickstart/).
run: $(STAMP)
	$(VPY) -m examples.first_run --out data/quickstart

## The whole test suite (about 10 minutes on 2 idle cores), then its 15 slowest tests.
test: $(STAMP)
	$(VPY) -m pytest -q --durations=15

## qmp.sweep on a real one-node Slurm cluster on localhost: submit, requeue mid-run, resume, compare with local
## runs (about 2-5 minutes; needs root: installs Debian's slurm packages if missing; not part of `make test`).
test-slurm: $(STAMP)
	$(VPY) tests/slurm_e2e.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache
