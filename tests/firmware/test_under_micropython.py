"""Every firmware test function, run again under the real MicroPython interpreter
with an ESP32-sized heap (-X heapsize=64k)."""
import ast
from pathlib import Path

import pytest

from tests.micropython import run_micropython

HERE = Path(__file__).resolve().parent


def firmware_test_cases():
    cases = []
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and not node.args.args:
                cases.append((path.stem, node.name))
    return cases


@pytest.mark.parametrize("module,name", firmware_test_cases(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_under_micropython(module, name):
    # the runner precompiled too (-m from the compiled tests): compiling it from source
    # would leave the compiler's leftovers in the 64 KiB heap the test needs
    result = run_micropython(["-m", "mp_runner", module, name])
    assert result.returncode == 0 and "PASS " + name in result.stdout, (
        "under MicroPython:\n" + result.stdout + result.stderr)
