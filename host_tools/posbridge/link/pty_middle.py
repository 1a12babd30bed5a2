"""A man in the middle of the serial link: it opens the board's tty, makes a new
pseudo-terminal for the bridge, and passes the bytes between them through
`transform(direction, data)`, which a subclass gives (damage, record, rewrite).
With `baud`, each direction is a line of that rate, 8N1 (paced_line.py): the bridge and
the board see bytes arrive as from the real USB-UART, not at the speed of a pty."""
import os
import pty
import select
import threading
import tty
from typing import Optional

from .paced_line import PacedLine, fd_writer

BOARD_TO_BRIDGE = "board->bridge"
BRIDGE_TO_BOARD = "bridge->board"


class PtyMiddle:
    def __init__(self, board_path: str, baud: Optional[int] = None):
        self._board = os.open(board_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._board)
        self._master, slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(slave)
        self._slave = slave  # held open so the bridge side can come and go
        self.bridge_path = os.ttyname(slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self.baud = baud
        # the line each direction's bytes go out on: paced, or written at once
        self._lines = {}
        if baud:
            self._lines = {BOARD_TO_BRIDGE: PacedLine(fd_writer(self._master), baud),
                           BRIDGE_TO_BOARD: PacedLine(fd_writer(self._board), baud)}

    def bytes_sent(self, direction: str) -> int:
        """Bytes a paced line has delivered so far in that direction."""
        return self._lines[direction].bytes_sent

    def transform(self, direction: str, data: bytes) -> bytes:
        return data

    def start(self) -> str:
        """The path the bridge opens."""
        self._thread.start()
        return self.bridge_path

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        for line in self._lines.values():
            line.close()
        for fd in (self._board, self._master, self._slave):
            os.close(fd)

    def _pump(self):
        routes = {self._board: (self._master, BOARD_TO_BRIDGE),
                  self._master: (self._board, BRIDGE_TO_BOARD)}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(routes), [], [], 0.05)
            for src in ready:
                try:
                    data = os.read(src, 512)
                except OSError:  # the bridge side is not open yet
                    continue
                dst, direction = routes[src]
                out = self.transform(direction, data)
                if out and direction in self._lines:
                    self._lines[direction].put(out)
                elif out:
                    try:
                        os.write(dst, out)
                    except OSError:
                        pass
