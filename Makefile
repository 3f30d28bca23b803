# inboxd — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Two stamps: `make run` installs the project only; `make test` adds the test tools. The
# test install covers the run install too, so `make run` after `make test` installs nothing.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check
ARGS ?=
# The suite runs in this many pytest processes (pytest-xdist), a test file per process at
# a time: most tests wait on a daemon subprocess, so two halve the wall time on 2 cores.
# TEST_JOBS=0 runs it in one process.
TEST_JOBS ?= 2

.PHONY: run test lint bench clean venv soak

$(PY):
	@$(PYTHON) -m venv $(VENV) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); \
	  else echo "make: '$(PYTHON) -m venv' failed; install python3-venv" >&2; exit 1; fi; }

$(RUN_STAMP): pyproject.toml | $(PY)
	@echo "make: installing inboxd into $(VENV)" >&2
	$(PIP_INSTALL) -e .
	@touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(PY)
	@echo "make: installing inboxd and its test tools into $(VENV)" >&2
	$(PIP_INSTALL) -e '.[test]'
	@touch $(TEST_STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(PY) daemon.py $(ARGS)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

test: $(TEST_STAMP) lint
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile $(ARGS)

# The engine against a bare loop; the default pipeline against the trivial one (and with
# --trace); start-up to the first line and to READY=1; --workers 1 against 2; the nats
# sink against the file sink (needs the test extras' nats-server).
bench: $(RUN_STAMP)
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_pipelines.py
	$(PY) bench/bench_startup.py
	$(PY) bench/bench_workers.py
	$(PY) bench/bench_nats.py

# 100 random kill -9, both logrotate modes (also with kill -9), the copytruncate race
# (logrotate every 0.5 s, size 1k, 20 runs in a row beside a CPU burner), the hostile
# inbox: one summary line per run.
soak: $(TEST_STAMP)
	$(PY) tests/soak.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
