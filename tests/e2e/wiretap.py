"""A frame-level tap on the serial link, for tests: it sits between the board's tty and a
new pseudo-terminal for the bridge, keeps every byte that crosses in each direction, and
can rewrite a frame's payload on the way (the CRC recomputed, so only the MAC can tell)
or drop the frame (an answer lost on the way).
"""
import os
import pty
import select
import threading
import tty

from posbridge.framing import FrameSplitter, encode_frame

BOARD_TO_BRIDGE = "board->bridge"
BRIDGE_TO_BOARD = "bridge->board"
DROP = b""   # what a tamper function returns to drop the frame


class WireTap:
    def __init__(self, board_path: str):
        self.raw = {BOARD_TO_BRIDGE: bytearray(), BRIDGE_TO_BOARD: bytearray()}
        self.tampered = []       # (direction, payload before, payload after)
        # tamper(direction, payload) -> new payload, DROP, or None to pass it unchanged;
        # set by the test
        self.tamper = None
        self._splitters = {BOARD_TO_BRIDGE: FrameSplitter(), BRIDGE_TO_BOARD: FrameSplitter()}
        self._board = os.open(board_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._board)
        self._master, self._slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.bridge_path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)

    def start(self) -> str:
        self._thread.start()
        return self.bridge_path

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._board, self._master, self._slave):
            os.close(fd)

    def _pass(self, direction, data):
        self.raw[direction] += data
        if self.tamper is None:
            return data
        # whole frames only from here on: re-encoding a good frame gives the same bytes
        out = bytearray()
        for payload in self._splitters[direction].feed(data):
            changed = self.tamper(direction, payload)
            if changed is not None:
                self.tampered.append((direction, payload, changed))
                if changed == DROP:
                    continue
                payload = changed
            out += encode_frame(payload)
        return bytes(out)

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
                out = self._pass(direction, data)
                if out:
                    try:
                        os.write(dst, out)
                    except OSError:
                        pass
