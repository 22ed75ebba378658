# Two commands on a fresh machine: `make demo` and `make test`. Both set everything up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lab bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) tests/helpers/ipk6_env.py   # a second venv with ipykernel 6 (built once, cached)
	$(PY) -m pytest $(PYTEST_ARGS)

# The install built the JupyterLab extension (labextension/) and put it, and the server
# extension's config, into the venv. As root (containers, CI machines) lab needs --allow-root.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check nbsched tests benchmarks scripts
	$(VENV)/bin/mypy nbsched

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
