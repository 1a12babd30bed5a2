# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each installs what it needs into .venv first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test soak firmware bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/posbridge emulate --scenario scenarios/demo.json

test: $(STAMP)
	$(PY) -m pytest -q

# 1,000 purchases through the fault-injecting link (SOAK_PURCHASES=n for another count):
# prints the outcomes and the double and lost charges, which must be none
soak: $(STAMP)
	$(PY) -m pytest -q -s -m soak -p no:cacheprovider tests/e2e/test_soak.py

# Precompile every firmware module to .mpy (what gets deployed) and print the total size.
firmware: $(STAMP)
	$(VENV)/bin/posbridge firmware build --out build

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf build .pytest_cache
