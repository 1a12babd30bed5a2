"""A frame-level tap on the serial link, for tests: between the board's tty and the
bridge's (posbridge.link.pty_middle), it keeps every byte that crosses in each direction, and
can rewrite a frame's payload on the way (the CRC recomputed, so only the MAC can tell)
or drop the frame (an answer lost on the way), or put frames of its own on the way to
the board (a forged message).
"""
import os

from posbridge.link.framing import FrameSplitter, encode_frame
from posbridge.link.pty_middle import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD, PtyMiddle

__all__ = ["WireTap", "BOARD_TO_BRIDGE", "BRIDGE_TO_BOARD", "DROP"]

DROP = b""   # what a tamper function returns to drop the frame


class WireTap(PtyMiddle):
    def __init__(self, board_path: str):
        super().__init__(board_path)
        self.raw = {BOARD_TO_BRIDGE: bytearray(), BRIDGE_TO_BOARD: bytearray()}
        self.tampered = []       # (direction, payload before, payload after)
        # tamper(direction, payload) -> new payload, a list of payloads (several frames in
        # its place), DROP, or None to pass it unchanged; set by the test

        self.tamper = None
        self._splitters = {BOARD_TO_BRIDGE: FrameSplitter(), BRIDGE_TO_BOARD: FrameSplitter()}

    def transform(self, direction, data):
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
                if isinstance(changed, list):
                    out += b"".join(encode_frame(p) for p in changed)
                    continue
                payload = changed
            out += encode_frame(payload)
        return bytes(out)

    def inject(self, payload):
        """A frame of the tap's own to the board, at once (one write: a pty takes it
        whole, between the frames the bridge sends)."""
        os.write(self._board, encode_frame(payload))
