"""Import paths for every test run under CPython, set here once.

- the repository root, for `tests.*`;
- firmware/, whose modules import each other by bare name as they do on the board;
- tests/firmware/, for the firmware test helpers and the CPython stand-ins of
  MicroPython's cryptolib and framebuf.

Under MicroPython the same two directories come from MICROPYPATH (tests/micropython.py).
No firmware module is named like a standard or installed module (test_setup.py holds
that), so putting firmware/ first shadows nothing the host code imports.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
FIRMWARE_TESTS = ROOT / "tests" / "firmware"

for _path in (ROOT, FIRMWARE, FIRMWARE_TESTS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# firmware modules import const from MicroPython's own module, which CPython lacks
from tests.cpython_shims import install_micropython_module  # noqa: E402

install_micropython_module()
