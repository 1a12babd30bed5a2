"""Host side of the link layer (docs/protocol.md, "Link"): header, ACK, bounded
retransmission and duplicate detection over any pyserial port.

A reader thread owns the port's input: it acknowledges messages at once (so the board's
300 ms timer is met however busy the caller is), drops duplicates, and queues the rest
for receive(). send() blocks until the board acknowledges or the retries run out."""
import queue
import random
import threading
from collections import Counter
from typing import Callable, Optional

import serial

from .framing import FrameSplitter, MAX_PAYLOAD, encode_frame
from .protocol import FLAG_SYN, HEADER_SIZE, PROTOCOL_VERSION, TYPE_ACK

MAX_BODY = MAX_PAYLOAD - HEADER_SIZE


class LinkError(Exception):
    pass


class LinkFailed(LinkError):
    """The board did not acknowledge a message after every retry."""


class LinkClosed(LinkError):
    """The port went away (unplugged board, closed pseudo-terminal)."""


FrameLog = Callable[[str, int, int, bytes], None]  # direction, type, seq, body
WireTap = Callable[[str, bytes], None]             # "rx" | "tx", the port's bytes


class HostLink:
    def __init__(self, port, timeout: float = 0.3, retries: int = 5,
                 frame_log: Optional[FrameLog] = None, wire_tap: Optional[WireTap] = None):
        self.port = port
        self.wire_tap = wire_tap     # a copy of every byte read and written (tap.py)
        self.timeout = timeout
        self.retries = retries
        self.frame_log = frame_log
        self.splitter = FrameSplitter()
        self.stats = Counter()
        self._inbox: queue.Queue = queue.Queue()
        self._write_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._acked = threading.Event()
        self._waiting_seq: Optional[int] = None
        self._tx_seq = random.randrange(256)
        self._syn = True
        self._last_rx = None
        self._stop = threading.Event()
        self._reader: Optional[threading.Thread] = None
        self.closed_reason: Optional[str] = None

    # -- lifecycle --

    def start(self) -> "HostLink":
        self._reader = threading.Thread(target=self._read_loop, name="link-reader", daemon=True)
        self._reader.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- sending --

    def send(self, mtype: int, body: bytes = b"") -> None:
        if mtype == TYPE_ACK or not 0 < mtype < 256:
            raise LinkError(f"bad message type {mtype!r}")
        if len(body) > MAX_BODY:
            raise LinkError(f"message body of {len(body)} bytes exceeds {MAX_BODY}")
        with self._send_lock:
            seq = self._tx_seq
            flags = FLAG_SYN if self._syn else 0
            frame = encode_frame(bytes((PROTOCOL_VERSION, mtype, seq, flags)) + body)
            self._acked.clear()
            self._waiting_seq = seq
            self.stats["tx"] += 1
            self._log("tx", mtype, seq, body)
            try:
                for attempt in range(self.retries + 1):
                    if self.closed_reason:
                        raise LinkClosed(self.closed_reason)
                    if attempt:
                        self.stats["retransmits"] += 1
                    self._write(frame)
                    if self._acked.wait(self.timeout):
                        self._syn = False
                        return
                self.stats["failures"] += 1
                raise LinkFailed(f"no acknowledgement for message type {mtype:#04x} "
                                 f"after {self.retries + 1} tries")
            finally:
                self._waiting_seq = None
                self._tx_seq = (seq + 1) & 0xFF

    # -- receiving --

    def receive(self, timeout: Optional[float] = None):
        """Next (type, body) from the board, or None after timeout.
        Raises LinkClosed once the port is gone and nothing is left to read."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:
            self._inbox.put(None)  # keep telling every later caller
            raise LinkClosed(self.closed_reason or "link closed")
        return item

    def _read_loop(self):
        while not self._stop.is_set():
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                # TypeError: pyserial's posix port after close() reads from a None fd
                self.closed_reason = f"port closed: {exc}"
                break
            if data:
                if self.wire_tap is not None:
                    self.wire_tap("rx", data)
                for payload in self.splitter.feed(data):
                    self._on_frame(payload)
        else:
            self.closed_reason = self.closed_reason or "link closed"
        self._inbox.put(None)

    def _on_frame(self, payload: bytes):
        if len(payload) < HEADER_SIZE or payload[0] != PROTOCOL_VERSION:
            self.stats["bad_header"] += 1
            return
        mtype, seq, flags = payload[1], payload[2], payload[3]
        if mtype == TYPE_ACK:
            if self._waiting_seq == seq:
                self._acked.set()
            return
        self._write(encode_frame(bytes((PROTOCOL_VERSION, TYPE_ACK, seq, 0))))
        key = (seq, flags & FLAG_SYN)
        if key == self._last_rx:
            self.stats["duplicates"] += 1
            return
        self._last_rx = key
        self.stats["rx"] += 1
        body = payload[HEADER_SIZE:]
        self._log("rx", mtype, seq, body)
        self._inbox.put((mtype, body))

    def _write(self, data: bytes):
        with self._write_lock:
            if self.wire_tap is not None:
                self.wire_tap("tx", data)
            try:
                self.port.write(data)
                self.port.flush()
            except (serial.SerialException, OSError) as exc:
                self.closed_reason = f"port write failed: {exc}"

    def _log(self, direction, mtype, seq, body):
        if self.frame_log is not None:
            self.frame_log(direction, mtype, seq, body)

    def counters(self) -> dict:
        # the same names as the board's counters (protocol.LINK_COUNTERS)
        errors = self.splitter.errors
        return dict(self.stats, crc_errors=errors["crc"], framing_errors=errors["framing"],
                    oversize=errors["oversize"])
