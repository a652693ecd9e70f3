# The two commands of the README: `make demo` and `make test` (each sets up what it needs first).
# One virtual environment (.venv) in two stages: `setup-core` (torch, basicsr, the plugin: all the demo
# needs) and `setup` (core plus the MMagic stack, with mmcv built once from its sdist when no wheel is
# cached, and the test tools). See tools/setup_env.sh.
PYTHON_VENV := .venv/bin/python
# pytest-xdist workers for make test and make test-quick: one per CPU core (`make test PYTEST_WORKERS=0` runs
# in one process). A training that several tests read still runs once per test run (tests/_training_runs.py,
# once_per_run).
PYTEST_WORKERS ?= auto

.PHONY: setup setup-core check-mmcv-build test test-quick demo clean

setup:
	bash tools/setup_env.sh full

setup-core:
	bash tools/setup_env.sh core

# Download mmcv's sdist, patch it and prepare its metadata with the build-only setuptools (no compile).
check-mmcv-build: setup-core
	bash tools/setup_env.sh check-mmcv-build

# --durations=30: every run (and CI) reports its 30 slowest tests, the profile to start from.
test: setup
	$(PYTHON_VENV) -m pytest -n $(PYTEST_WORKERS) --durations=30

# The suite without the tests marked slow (training loops, framework CLIs in fresh interpreters,
# full-size Set5, wheel builds, torch.compile), for whoever changes the code (README, "The two commands").
test-quick: setup
	$(PYTHON_VENV) -m pytest -n $(PYTEST_WORKERS) -m "not slow"

demo: setup-core
	$(PYTHON_VENV) -m lesrcnn_plugin.cli.demo $(DEMO_ARGS)

clean:
	rm -rf .venv build *.egg-info .pytest_cache demo_output
