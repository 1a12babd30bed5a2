"""Entry point under the MicroPython unix port, used by the board emulator
(posbridge emulate). It builds the same application as main.py, on file descriptors
the emulator passes instead of the ESP32's UARTs and I2C:

    micropython -m unix_main --link FD --display FD --card FD --pinpad FD --state DIR

--link is the master side of a pseudo-terminal, raw and non-blocking (reads return
None when empty, like UART(timeout=0)); --display is the write end of a pipe; --card
and --pinpad are non-blocking read ends of pipes; --state is the board's flash."""
import sys

import settings
from app import Terminal
from pipe_panel import PipePanel


def parse_args(argv):
    opts = {}
    i = 0
    while i < len(argv):
        name = argv[i]
        if not name.startswith("--") or i + 1 >= len(argv):
            raise SystemExit("usage: unix_main.py --link FD --display FD [--terminal-id ID]")
        opts[name[2:]] = argv[i + 1]
        i += 2
    return opts


def main():
    opts = parse_args(sys.argv[1:])
    link = open(int(opts["link"]), "r+b")
    panel = PipePanel(open(int(opts["display"]), "wb"))
    Terminal(link, panel, terminal_id=opts.get("terminal-id", settings.TERMINAL_ID)).run()


main()
