"""What MicroPython has and CPython lacks, for running board modules under CPython:
the tick functions on `time` (plain milliseconds that never wrap), gc.mem_free (a
nominal figure: the real heap numbers come from the runs under MicroPython), and the
`micropython` module's const()."""
import gc
import sys
import time
import types


def install_micropython_module():
    """const() is the MicroPython compiler's hint for a constant (no RAM for its name);
    under CPython it is the value itself. The firmware imports it plainly, as the
    ESP32's build and its type stubs have it, so every CPython process that imports a
    board module needs this first (tests/conftest.py)."""
    if "micropython" not in sys.modules:
        module = types.ModuleType("micropython")
        module.const = lambda value: value
        sys.modules["micropython"] = module


def install():
    install_micropython_module()
    if not hasattr(time, "ticks_ms"):
        time.ticks_ms = lambda: int(time.monotonic() * 1000)
        time.ticks_us = lambda: int(time.monotonic() * 1000000)
        time.ticks_diff = lambda a, b: a - b
        time.ticks_add = lambda a, b: a + b
        time.sleep_ms = lambda ms: time.sleep(ms / 1000)
    if not hasattr(gc, "mem_free"):
        gc.mem_free = lambda: 1 << 20
