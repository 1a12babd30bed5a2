"""Entry point under the MicroPython unix port, used by the board emulator
(posbridge emulate). It builds the same application as main.py, on file descriptors
the emulator passes instead of the ESP32's UARTs and I2C:

    micropython -m unix_main --link FD --display FD --card FD --pinpad FD --state DIR
                             [--nfc FD] [--names 1] [--timed 1]

--link is the master side of a pseudo-terminal, raw and non-blocking (reads return
None when empty, like UART(timeout=0)); --display is the write end of a pipe; --card
and --pinpad are non-blocking read ends of pipes; --state is the board's flash; --nfc,
when given, is one end of a socket pair, both ways and non-blocking, whose other end is
the PN532 contactless reader (without it the board takes the stripe only, as a board
without the reader); --names 1 prints the count of interned names after each screen,
--timed 1 the panel's time on it (pipe_panel.py)."""
import sys

import settings
from app import Terminal
from pipe_panel import PipePanel
from store import Store


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
    panel = PipePanel(open(int(opts["display"]), "wb"), names=opts.get("names") == "1",
                      timed=opts.get("timed") == "1")
    card = open(int(opts["card"]), "rb") if "card" in opts else None
    pinpad = open(int(opts["pinpad"]), "rb") if "pinpad" in opts else None
    nfc = open(int(opts["nfc"]), "r+b") if "nfc" in opts else None
    store = Store(opts["state"]) if "state" in opts else None
    terminal = Terminal(link, panel, terminal_id=opts.get("terminal-id", settings.TERMINAL_ID),
                        card_stream=card, pinpad_stream=pinpad, store=store, nfc_stream=nfc)
    terminal.fault_log = sys.stderr
    terminal.run()


main()
