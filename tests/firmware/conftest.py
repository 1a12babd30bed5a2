# Firmware tests are plain functions that import firmware modules: pytest runs them under
# CPython from here, and test_under_micropython.py runs each one again under MicroPython.
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE.parents[1] / "firmware", HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# CPython lacks MicroPython's tick functions; give the time module the same ones so the
# firmware runs unchanged (ticks here are plain milliseconds that never wrap).
import time

if not hasattr(time, "ticks_ms"):
    time.ticks_ms = lambda: int(time.monotonic() * 1000)
    time.ticks_diff = lambda a, b: a - b
    time.ticks_add = lambda a, b: a + b
    time.sleep_ms = lambda ms: time.sleep(ms / 1000)

# gc.mem_free is MicroPython's; CPython has no fixed heap, so report a nominal figure
# (the real heap numbers come from the runs under MicroPython).
import gc

if not hasattr(gc, "mem_free"):
    gc.mem_free = lambda: 1 << 20
