"""One direction of a serial line at a given baud rate, 8N1: ten bit times a byte (start,
eight data, stop), so 115200 baud carries 11,520 bytes a second. Bytes put on the line
leave in order, each no sooner than the line is free and its ten bits have passed;
the receiver sees them trickle in as from a UART, not in one chunk. Each direction of
a link is its own line (full duplex)."""
import os
import threading
import time
from collections import deque


def byte_time(baud: int) -> float:
    """Seconds one byte occupies the line, 8N1."""
    return 10.0 / baud


class PacedLine:
    # bytes are written once due, at most this late: 1 ms is ~12 bytes at 115200, so the
    # last byte of a frame (its delimiter) arrives within 1 ms of when a UART would
    # deliver it, without a wake-up per byte
    GRANULARITY_S = 0.001

    def __init__(self, write, baud: int, clock=time.monotonic):
        self._write = write          # write(bytes): where the bytes come out
        self.baud = baud
        self._byte_s = byte_time(baud)
        self._clock = clock
        self._pending: deque = deque()   # (due time of the last byte, bytes)
        self._free_at = 0.0              # when the line finishes what it was given
        self._cond = threading.Condition()
        self._stop = False
        self.bytes_sent = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        """Queue bytes to go out at the line's pace, after what is already queued."""
        if not data:
            return
        with self._cond:
            start = max(self._clock(), self._free_at)
            self._free_at = start + len(data) * self._byte_s
            self._pending.append((start, bytes(data)))
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=2)

    def _run(self):
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                start, data = self._pending[0]
            # write each byte once its ten bits are over, in slices of the granularity
            sent = 0
            while sent < len(data):
                now = self._clock()
                due = int((now - start) / self._byte_s)   # bytes complete by now
                if due > sent:
                    end = min(due, len(data))
                    try:
                        self._write(data[sent:end])
                    except OSError:
                        pass   # the far end is gone: the bytes are lost, as on a cable
                    self.bytes_sent += end - sent
                    sent = end
                    continue
                wait = start + (sent + 1) * self._byte_s - now
                time.sleep(max(wait, self.GRANULARITY_S))
                if self._stop:
                    return
            with self._cond:
                self._pending.popleft()


def fd_writer(fd: int):
    """write(bytes) to a file descriptor, all of it."""
    def write(data):
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    return write
