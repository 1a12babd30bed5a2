# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each installs what it needs into .venv first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test firmware bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/posbridge emulate --scenario scenarios/demo.json

test: $(STAMP)
	$(PY) -m pytest -q

# Precompile every firmware module to .mpy (what gets deployed) and print the total size.
firmware: $(STAMP)
	$(VENV)/bin/posbridge firmware build --out build

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf build .pytest_cache
