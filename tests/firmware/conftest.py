# Firmware tests are plain functions that import firmware modules: pytest runs them under
# CPython from here, and test_under_micropython.py runs each one again under MicroPython.
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE.parents[1] / "firmware", HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# CPython lacks MicroPython's tick functions and gc.mem_free: the firmware runs unchanged
from tests.cpython_shims import install  # noqa: E402

install()
