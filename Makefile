# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each installs what it needs into .venv first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# MicroPython's type stubs for the firmware check (docs/firmware-typecheck.md), one
# directory per port. Not in the test extras: a stub package writes machine.pyi, time.pyi,
# an empty requests/ and more at the top of where it is installed, so two ports would
# overwrite each other in site-packages, and `import requests` on the host would find
# the stubs' empty package.
MPY_STUBS        := $(VENV)/mpy-stubs
MPY_STUBS_PORTS  := esp32 unix
MPY_PORT_STUBS   := 1.29.0.post1
MPY_STDLIB_STUBS := 1.29.0.post2

.PHONY: demo console test soak firmware bench endurance fuzz clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -rf $(MPY_STUBS)
	for port in $(MPY_STUBS_PORTS); do \
	    $(PY) -m pip install --quiet --target $(MPY_STUBS)/$$port \
	        micropython-$$port-stubs==$(MPY_PORT_STUBS) \
	        micropython-stdlib-stubs==$(MPY_STDLIB_STUBS) || exit 1; \
	done
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/posbridge emulate --scenario scenarios/demo.json

# the emulated terminal in a browser page: http://127.0.0.1:8080/ (CONSOLE_PORT=n for another)
CONSOLE_PORT ?= 8080
console: $(STAMP)
	$(VENV)/bin/posbridge console --port $(CONSOLE_PORT)

test: $(STAMP)
	$(PY) -m pytest -q

# 1,000 purchases through the fault-injecting link (SOAK_PURCHASES=n for another count),
# 300 mixed transactions (stripe and contactless) with power cuts and bridge restarts
# (SOAK_MIXED=n), and 200 through the ISO 8583 issuer host, killed and started again
# (SOAK_MIXED_HOST=n): prints the outcomes and the double and lost charges, which must
# be none
soak: $(STAMP)
	$(PY) -m pytest -q -s -m soak -p no:cacheprovider tests/e2e/test_soak.py

# Precompile every firmware module to .mpy (what gets deployed) and print the total size.
firmware: $(STAMP)
	$(VENV)/bin/posbridge firmware build --out build

# Codec costs, heap per screen, time at the terminal over a link paced at 115200 baud
# (BENCH_TRANSACTIONS per kind, 100), bytes on the wire: docs/benchmarks.md
bench: $(STAMP)
	$(PY) -m benchmarks

# 10,000 mixed transactions on the emulated board (ENDURANCE_TRANSACTIONS for another
# count): heap, flash and interned names must not grow; docs/endurance-heap.png and
# docs/benchmarks.md
endurance: $(STAMP)
	$(PY) -m benchmarks.endurance $(or $(ENDURANCE_TRANSACTIONS),10000)

# Seeded corpora (FUZZ_INPUTS per target, 100,000) under MicroPython against the board's
# decoders and through the host's, then the hypothesis properties (FUZZ_EXAMPLES each,
# 10,000); a crash keeps its input in tests/fuzz_regressions/ and fails the run
fuzz: $(STAMP)
	$(PY) -m fuzzing $(or $(FUZZ_INPUTS),100000) $(or $(FUZZ_EXAMPLES),10000)

clean:
	rm -rf build .pytest_cache
