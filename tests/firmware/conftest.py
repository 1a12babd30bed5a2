# Firmware tests are plain functions that import firmware modules: pytest runs them under
# CPython from here, and test_under_micropython.py runs each one again under MicroPython.
# tests/conftest.py puts firmware/ and this directory on the path.

# CPython lacks MicroPython's tick functions and gc.mem_free: the firmware runs unchanged
from tests.cpython_shims import install

install()


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def utc_offset_as_at_power_on():
    """wallclock's UTC offset is module state, and under CPython the tests share the
    module: each starts with the offset a board has at power-on, as it does under
    MicroPython (a process per test)."""
    import wallclock
    wallclock._utc_offset_min = 480
    yield
    wallclock._utc_offset_min = 480
