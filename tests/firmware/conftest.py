# Firmware tests are plain functions that import firmware modules: pytest runs them under
# CPython from here, and test_under_micropython.py runs each one again under MicroPython.
# tests/conftest.py puts firmware/ and this directory on the path.

# CPython lacks MicroPython's tick functions and gc.mem_free: the firmware runs unchanged
from tests.cpython_shims import install

install()
