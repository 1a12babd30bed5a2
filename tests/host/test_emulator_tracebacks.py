"""Emulator.tracebacks: the firmware's faults as the endurance run and the soak count
them, read from its output."""
from posbridge.board.emulator import Emulator

OUTPUT = [
    "compute request 1295",
    "Traceback (most recent call last):",
    '  File "app.py", line 141, in guarded_step',
    '  File "answer.py", line 39, in check_response',
    '  File "cmac.py", line 51, in cipher',
    "MemoryError: memory allocation failed, allocating 320 bytes",
    "compute answer 915",
    "Traceback (most recent call last):",
]


def test_each_traceback_gives_its_last_line_and_the_innermost_place():
    em = Emulator()
    em.stderr_lines = list(OUTPUT)
    assert em.tracebacks() == [
        ("MemoryError: memory allocation failed, allocating 320 bytes",
         'File "cmac.py", line 51, in cipher'),
        ("?", "?"),      # cut short: the output says neither
    ]


def test_no_traceback_no_fault():
    em = Emulator()
    em.stderr_lines = ["compute request 1295"]
    assert em.tracebacks() == []
