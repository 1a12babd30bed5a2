"""What MicroPython has and CPython lacks, for running board modules under CPython:
the tick functions on `time` (plain milliseconds that never wrap) and gc.mem_free (a
nominal figure: the real heap numbers come from the runs under MicroPython)."""
import gc
import time


def install():
    if not hasattr(time, "ticks_ms"):
        time.ticks_ms = lambda: int(time.monotonic() * 1000)
        time.ticks_diff = lambda a, b: a - b
        time.ticks_add = lambda a, b: a + b
        time.sleep_ms = lambda ms: time.sleep(ms / 1000)
    if not hasattr(gc, "mem_free"):
        gc.mem_free = lambda: 1 << 20
