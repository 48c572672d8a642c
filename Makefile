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

## Train qmp_dnc on JacoReachMT5-v1 for a small default budget (a few minutes).
run: $(STAMP)
	$(VPY) run.py qmp_dnc --env=JacoReachMT5-v1 --seed 0 --n_epochs 30 --evaluation_frequency 5 --run_dir data/quickstart/qmp_dnc_JacoReachMT5-v1_seed0 --overwrite true

## The whole test suite (about 10 minutes on 2 cores).
test: $(STAMP)
	$(VPY) -m pytest -q

## qmp.sweep on a real one-node Slurm cluster on localhost: submit, requeue mid-run, resume, compare with local
## runs (about 2-5 minutes; needs root: installs Debian's slurm packages if missing; not part of `make test`).
test-slurm: $(STAMP)
	$(VPY) tests/slurm_e2e.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data .pytest_cache
