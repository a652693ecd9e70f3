# The two commands of the README: `make demo` and `make test` (each sets up first).
PYTHON_VENV := .venv/bin/python

.PHONY: setup test demo clean

setup:
	bash tools/setup_env.sh

test: setup
	$(PYTHON_VENV) -m pytest

demo: setup
	$(PYTHON_VENV) tools/demo.py $(DEMO_ARGS)

clean:
	rm -rf .venv build *.egg-info .pytest_cache demo_output
