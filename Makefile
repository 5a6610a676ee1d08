# repro: one command per paper table, one for the tests. Every target sets itself up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
LOCK    := requirements/lock.txt
# uv from PATH, else the one `make setup` installs with pip.
UV      := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PROFILE ?= smoke
FMNIST  := /usr/share/datasets/fashion-mnist

.PHONY: help setup lock data test lint pytest clean

help:
	@echo "make table7   regenerate Table 7 (default PROFILE=smoke: Fashion-MNIST proxy on CPU; CLUSTER=slurm to submit)"
	@echo "make tables   every table; PROFILE=full for the paper setting"
	@echo "make claims   test the paper's claims on the converged Fashion-MNIST proxy (3 seeds): results/claims.md"
	@echo "make test     set up, lint (ruff) and run the test suite"
	@echo "make setup    create $(VENV) from the hashed lock ($(LOCK)); no-op when up to date"
	@echo "make lock     re-resolve $(LOCK) from pyproject.toml"

# The virtualenv is rebuilt only when the lock or pyproject.toml changes. --python names it explicitly: `python3 -m
# uv` otherwise installs into the interpreter that started it, whatever VIRTUAL_ENV says.
$(STAMP): $(LOCK) pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -c "import uv" 2>/dev/null || python3 -m pip install --quiet uv
	$(UV) venv --quiet --allow-existing $(VENV)
	$(UV) pip install --quiet --python $(PY) --require-hashes -r $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP)

lock:
	$(UV) pip compile pyproject.toml --extra dev --extra detseg --generate-hashes --universal --python-version 3.10 \
		--quiet -o $(LOCK)

# The embedded default data set: Debian's dataset-fashion-mnist, installed when we are root and apt exists.
data:
	@if [ -d "$(FMNIST)" ] || [ -n "$$REPRO_DATA" -a -d "$$REPRO_DATA/fashion-mnist" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian package dataset-fashion-mnist"; \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) || \
		echo "warning: could not install dataset-fashion-mnist; set REPRO_DATA (see README)"; \
	else \
		echo "note: Fashion-MNIST not found at $(FMNIST); as root run 'apt-get install dataset-fashion-mnist'" \
		     "or set REPRO_DATA=DIR with DIR/fashion-mnist/*-ubyte.gz"; \
	fi

lint: setup
	$(VENV)/bin/ruff check .

# The tests marked `slurm` need the local single-node SLURM: as root it is started for the run (and stopped
# after, unless it was already up); elsewhere they are skipped and this says why.
pytest: setup data
	@was_up=0; started=0; \
	if [ -f "$${REPRO_SLURM_DIR:-/tmp/repro-slurm}/slurmctld.pid" ] && timeout 5 sinfo >/dev/null 2>&1; then was_up=1; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "make test: not root, so the local SLURM cannot start: the tests marked slurm are skipped"; \
	elif slurm/local/up.sh >/tmp/repro-slurm-up.log 2>&1; then \
		started=1; echo "make test: local SLURM up, the tests marked slurm run"; \
	else \
		echo "make test: the local SLURM did not start (see /tmp/repro-slurm-up.log): the tests marked slurm are skipped"; \
	fi; \
	status=0; $(PY) -m pytest -q || status=$$?; \
	if [ $$started = 1 ] && [ $$was_up = 0 ]; then slurm/local/down.sh >/dev/null 2>&1 || true; fi; \
	exit $$status

test: lint pytest

# One target per paper table that reports experiments: run the manifest's pending runs (local executor, or one
# SLURM array with CLUSTER=slurm; WAIT=1 follows it to the end), then render results/tableNN.{md,csv,tex} and
# plots from what has finished (with CLUSTER=slurm, run it again later to refresh: nothing is submitted twice).
TABLE_NUMBERS := 1 2 3 4 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 25
TABLE_TARGETS := $(addprefix table,$(TABLE_NUMBERS))
CLUSTER ?= local
.PHONY: $(TABLE_TARGETS) tables claims

$(TABLE_TARGETS): table%: setup data
	@n=$$(printf %02d $*); status=0; \
	if [ "$(CLUSTER)" = slurm ]; then \
		$(PY) -m repro submit experiments/table$$n.yaml --profile $(PROFILE) --cluster slurm \
			$(if $(WAIT),--wait) || status=$$?; \
	else \
		$(PY) -m repro run experiments/table$$n.yaml --profile $(PROFILE) || status=$$?; \
	fi; \
	$(PY) -m repro table $* --profile $(PROFILE) || status=$$?; \
	exit $$status

# Every table, also after one whose runs could not all start (`repro run` exits 3): the status is the last failure's.
tables:
	@status=0; for n in $(TABLE_NUMBERS); do $(MAKE) --no-print-directory table$$n || status=$$?; done; exit $$status

# The paper's claims on the proxy profile (experiments/claims.yaml): train what the runnable ones need, 3 seeds
# each, then write results/claims.md and the proxy tables they draw on (results/tableNN-proxy.*).
claims: setup data
	$(PY) -m repro claims --run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# --- Local single-node SLURM: slurm/local/up.sh and down.sh need root; state in $REPRO_SLURM_DIR. ----
.PHONY: slurm-up slurm-down test-slurm

slurm-up:
	slurm/local/up.sh

slurm-down:
	slurm/local/down.sh

# Brings the cluster up, runs the tests marked `slurm`, and always brings it down again (status of the tests).
test-slurm: setup
	@slurm/local/up.sh || { echo "make test-slurm: could not start the local SLURM (needs root and apt; see" \
	     "slurm/local/up.sh)" >&2; exit 2; }
	@status=0; $(PY) -m pytest -m slurm -q -p no:cacheprovider || status=$$?; \
	  slurm/local/down.sh; exit $$status

# --- Benchmark: baseline vs EfficientTrain++ on the Fashion-MNIST proxy, CPU, a few minutes. -------------
.PHONY: bench
bench: setup
	$(PY) -m repro bench speedup --format json
