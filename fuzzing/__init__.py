"""Fuzzing at scale (make fuzz): seeded corpora run under MicroPython against the board's
decoders (corpus.py writes them, mp_fuzz.py runs them inside one micropython process
per target), and hypothesis on CPython against the host's (tests/host/test_fuzz_host.py)."""
