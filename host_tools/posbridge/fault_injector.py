"""A byte-level fault injector for the serial link: sits between the board's tty and
a new pseudo-terminal for the bridge, and damages what passes in both directions
(flipped bits, dropped bytes, duplicated chunks, garbage), reproducibly from a seed.
For tests, and for anyone who wants to watch the link recover."""
import os
import pty
import random
import select
import threading
import tty
from dataclasses import dataclass, field


@dataclass
class FaultRates:
    """Probabilities per chunk read from the wire (a chunk is what one read returned)."""
    flip: float = 0.05       # one bit flipped somewhere in the chunk
    drop: float = 0.05       # one byte removed
    duplicate: float = 0.03  # the chunk sent twice
    garbage: float = 0.03    # up to 16 random bytes inserted before it
    lose: float = 0.02       # the whole chunk lost


@dataclass
class FaultCounts:
    counts: dict = field(default_factory=lambda: {k: 0 for k in
                                                  ("flip", "drop", "duplicate", "garbage",
                                                   "lose", "chunks")})


class FaultInjector:
    def __init__(self, board_path: str, rates: FaultRates = FaultRates(), seed: int = 1):
        self.rates = rates
        self.rand = random.Random(seed)
        self.counts = FaultCounts().counts
        self.enabled = threading.Event()
        self.enabled.set()
        self._board = os.open(board_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._board)
        self._master, slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(slave)
        self._slave = slave  # held open so the bridge side can come and go
        self.bridge_path = os.ttyname(slave)
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

    def damage(self, data: bytes) -> bytes:
        if not self.enabled.is_set() or not data:
            return data
        r, c = self.rand, self.counts
        c["chunks"] += 1
        data = bytearray(data)
        if r.random() < self.rates.lose:
            c["lose"] += 1
            return b""
        if r.random() < self.rates.flip:
            c["flip"] += 1
            data[r.randrange(len(data))] ^= 1 << r.randrange(8)
        if r.random() < self.rates.drop and data:
            c["drop"] += 1
            del data[r.randrange(len(data))]
        if r.random() < self.rates.garbage:
            c["garbage"] += 1
            data[0:0] = bytes(r.randrange(256) for _ in range(r.randrange(1, 17)))
        if r.random() < self.rates.duplicate:
            c["duplicate"] += 1
            data = data + data
        return bytes(data)

    def _pump(self):
        pairs = {self._board: self._master, self._master: self._board}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(pairs), [], [], 0.05)
            for src in ready:
                try:
                    data = os.read(src, 512)
                except OSError:  # the bridge side is not open yet
                    continue
                out = self.damage(data)
                if out:
                    try:
                        os.write(pairs[src], out)
                    except OSError:
                        pass
