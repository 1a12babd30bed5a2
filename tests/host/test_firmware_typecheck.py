"""The firmware type-checked against MicroPython's stubs (mypy with firmware/mypy.ini):
a call the port does not have fails here, not on the board. Each port is checked on the
modules it runs: the ESP32 on the board image, the unix port on the emulator's modules;
the shared ones are checked against both, as they must run on both."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posbridge.board.firmware_build import board_modules
from tests.conftest import FIRMWARE

CONFIG = FIRMWARE / "mypy.ini"
STUBS = Path(sys.prefix) / "mpy-stubs"   # the Makefile installs each port's stubs here
PLATFORM = {"esp32": "esp32", "unix": "linux"}   # sys.platform on each


def port_modules(port, firmware=FIRMWARE):
    if port == "esp32":
        return [p.name for p in board_modules(firmware)]
    # main.py builds the drivers on machine.UART and I2C, which the unix port lacks
    return sorted(p.name for p in firmware.glob("*.py") if p.name != "main.py")


def run_mypy(port, files, cwd):
    stubs = STUBS / port
    if not (stubs / "stdlib" / "VERSIONS").is_file():
        pytest.fail(f"no MicroPython stubs for {port} in {stubs}: run `make .venv/.installed`")
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(CONFIG),
           "--custom-typeshed-dir", str(stubs), "--platform", PLATFORM[port],
           "--cache-dir", os.devnull, "--no-error-summary", *files]
    env = dict(os.environ, MYPYPATH=str(stubs))
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=100)


FINDING = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+): error: (?P<msg>.*?)  \[(?P<code>[a-z-]+)\]$", re.M)


def findings(output):
    """(file, line, code, message) of each error mypy reported."""
    return [(m["file"], int(m["line"]), m["code"], m["msg"]) for m in FINDING.finditer(output)]


@pytest.mark.parametrize("port", sorted(PLATFORM))
def test_firmware_passes(port):
    result = run_mypy(port, port_modules(port), FIRMWARE)
    assert result.returncode == 0, (
        f"firmware against the {port} stubs (docs/firmware-typecheck.md says how to treat "
        f"a finding):\n{result.stdout}{result.stderr}")


def test_wrong_uart_argument_in_main_fails(tmp_path):
    """The board's own entry with one UART argument the ESP32 does not take."""
    for src in FIRMWARE.glob("*.py"):
        shutil.copy(src, tmp_path)
    main = tmp_path / "main.py"
    text = main.read_text()
    assert text.count("timeout=0,\n               rxbuf=512)") == 1, (
        "main.py's contactless reader UART changed: edit this test")
    main.write_text(text.replace("timeout=0,\n               rxbuf=512)",
                                 "timeout=0,\n               rxbuf=512, bogus=1)"))

    result = run_mypy("esp32", port_modules("esp32", tmp_path), tmp_path)

    found = findings(result.stdout)
    assert result.returncode == 1 and any("bogus" in msg for *_, msg in found), result.stdout
    assert all(f == "main.py" and "UART" in msg for f, _, _, msg in found), result.stdout


# (what the firmware must not write, what it writes instead, the error mypy gives)
WRONG_CALLS = [
    ("time.monotonic()", "time.ticks_ms()", "attr-defined"),           # CPython only
    ("import hmac", "import cryptolib", "import-not-found"),           # on neither port
    ("import termios", "import select", "import-not-found"),          # the unix port's
    ("t0 = time.ticks_ms(); time.ticks_ms() - t0",                      # ticks wrap
     "t0 = time.ticks_ms(); time.ticks_diff(time.ticks_ms(), t0)", "operator"),
    ("machine.UART(1, baudrate=9600, bogus=1)",
     "machine.UART(1, baudrate=9600, tx=17, rx=16, timeout=0)", "call-overload"),
    ("machine.UART(1).read(4)[0]",                                      # None: nothing came
     "(machine.UART(1).read(4) or b'?')[0]", "index"),
    ("gc.mem_free(0)", "gc.mem_free()", "call-arg"),
]


def probe(tmp_path, name, lines):
    """A module of one function per line, unannotated as the firmware is (mypy would
    skip the bodies of such functions without check_untyped_defs): the line of each
    statement, in order."""
    text = "import gc\nimport machine\nimport time\n"
    at = []
    for i, line in enumerate(lines):
        text += f"\n\ndef f{i}(arg):\n    {line}\n"
        at.append(text.count("\n"))
    (tmp_path / name).write_text(text)
    return at


def test_calls_the_esp32_lacks_fail(tmp_path):
    wrong_at = probe(tmp_path, "wrong.py", [w for w, _, _ in WRONG_CALLS])
    result = run_mypy("esp32", ["wrong.py"], tmp_path)
    found = {(n, code) for f, n, code, _ in findings(result.stdout)}
    missed = [w for (w, _, code), n in zip(WRONG_CALLS, wrong_at) if (n, code) not in found]
    assert result.returncode == 1 and not missed, f"not reported: {missed}\n{result.stdout}"


def test_the_same_calls_written_right_pass(tmp_path):
    """So the failures above come from the wrong calls, not from the set-up."""
    probe(tmp_path, "right.py", [r for _, r, _ in WRONG_CALLS])
    result = run_mypy("esp32", ["right.py"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unix_port_has_termios_the_esp32_has_not(tmp_path):
    """The emulator's modules may use what the unix port has: the check follows the port."""
    probe(tmp_path, "tty.py", ["import termios; termios.setraw(arg)"])
    assert run_mypy("unix", ["tty.py"], tmp_path).returncode == 0
    result = run_mypy("esp32", ["tty.py"], tmp_path)
    assert result.returncode == 1 and "termios" in result.stdout, result.stdout
