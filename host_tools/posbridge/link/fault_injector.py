"""A byte-level fault injector for the serial link: sits between the board's tty and
a new pseudo-terminal for the bridge, and damages what passes in both directions
(flipped bits, dropped bytes, duplicated chunks, garbage), reproducibly from a seed.
For tests, and for anyone who wants to watch the link recover."""
import random
import threading
from dataclasses import dataclass, field

from .pty_middle import PtyMiddle


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


class FaultInjector(PtyMiddle):
    def __init__(self, board_path: str, rates: FaultRates = FaultRates(), seed: int = 1,
                 baud=None):
        super().__init__(board_path, baud)
        self.rates = rates
        self.rand = random.Random(seed)
        self.counts = FaultCounts().counts
        self.enabled = threading.Event()
        self.enabled.set()

    def transform(self, direction: str, data: bytes) -> bytes:
        return self.damage(data)

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
