"""Reliable messages over a framed serial stream: header, acknowledgement,
bounded retransmission, duplicate detection. docs/protocol.md is the specification.

Header (4 bytes, then the CBOR body):
    version | type | seq | flags
type 0 is the link's own ACK (seq = the acknowledged sequence number, empty body);
every other type is a message and is acknowledged. One message is in flight per
direction (stop-and-wait): at 115200 baud a full frame takes ~23 ms, so a window would
buy nothing for a terminal that exchanges a few messages per transaction.

The link is polled: poll() reads what the stream has, answers ACKs, retransmits on
timeout and gives up after `retries`, recording the failure for the application.
"""
import os
from time import ticks_diff

PROTOCOL_VERSION = 1
HEADER_SIZE = 4
TYPE_ACK = 0
FLAG_SYN = 0x01  # first message of a session: the receiver forgets the last sequence number

from framing import FrameDecoder, encode_frame, MAX_PAYLOAD

MAX_BODY = MAX_PAYLOAD - HEADER_SIZE


class LinkError(Exception):
    pass


class Link:
    def __init__(self, stream, clock, timeout_ms=300, retries=5, queue_size=4):
        self.stream = stream
        self.clock = clock
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.queue_size = queue_size
        self.decoder = FrameDecoder()
        self.rxbuf = bytearray(64)
        self.outbox = []          # (type, body) waiting to be sent
        self.inbox = []           # (type, body) delivered, not yet taken
        self.failed = []          # types of messages given up after the retries
        self.in_flight = None     # encoded frame waiting for its ACK
        self.in_flight_type = 0
        self.sent_at = 0
        self.attempts = 0
        self.tx_seq = os.urandom(1)[0]
        self.syn = True           # until our first message is acknowledged
        self.last_rx = None       # (seq, flags & FLAG_SYN) of the last message accepted
        self.stats = {"tx": 0, "rx": 0, "retransmits": 0, "duplicates": 0,
                      "bad_header": 0, "failures": 0, "short_writes": 0}

    # -- application side --

    def send(self, mtype, body=b""):
        """Queue a message. Raises LinkError if it cannot ever be sent; returns False
        if the queue is full (the caller retries later)."""
        if mtype == TYPE_ACK or not 0 < mtype < 256:
            raise LinkError("bad message type %r" % (mtype,))
        if len(body) > MAX_BODY:
            raise LinkError("message body of %d bytes exceeds %d" % (len(body), MAX_BODY))
        if len(self.outbox) >= self.queue_size:
            return False
        self.outbox.append((mtype, body))
        return True

    def receive(self):
        """The oldest delivered (type, body), or None."""
        if self.inbox:
            return self.inbox.pop(0)
        return None

    def take_failure(self):
        """Type of the oldest message the link gave up on, or None."""
        if self.failed:
            return self.failed.pop(0)
        return None

    def idle(self):
        return self.in_flight is None and not self.outbox

    def counters(self):
        d = self.decoder
        s = dict(self.stats)
        s["crc_errors"] = d.crc_errors
        s["framing_errors"] = d.cobs_errors
        s["oversize"] = d.oversize
        return s

    # -- pump --

    def poll(self):
        while True:
            try:
                n = self.stream.readinto(self.rxbuf)
            except OSError:  # e.g. EIO from a pseudo-terminal with no peer yet
                n = None
            if not n:
                break
            self.decoder.feed(self.rxbuf, n, self._on_frame)
        self._pump_tx()

    def _on_frame(self, payload):
        if len(payload) < HEADER_SIZE or payload[0] != PROTOCOL_VERSION:
            self.stats["bad_header"] += 1
            return
        mtype = payload[1]
        seq = payload[2]
        if mtype == TYPE_ACK:
            if self.in_flight is not None and seq == self.tx_seq:
                self.in_flight = None
                self.syn = False
                self.tx_seq = (self.tx_seq + 1) & 0xFF
            return
        # always acknowledge: a duplicate means our previous ACK was lost
        self._write(encode_frame(bytes((PROTOCOL_VERSION, TYPE_ACK, seq, 0))))
        key = (seq, payload[3] & FLAG_SYN)
        if key == self.last_rx:
            self.stats["duplicates"] += 1
            return
        self.last_rx = key
        self.stats["rx"] += 1
        self.inbox.append((mtype, payload[HEADER_SIZE:]))

    def _pump_tx(self):
        now = self.clock()
        if self.in_flight is not None:
            if ticks_diff(now, self.sent_at) < self.timeout_ms:
                return
            if self.attempts > self.retries:
                self.stats["failures"] += 1
                self.failed.append(self.in_flight_type)
                self.in_flight = None
                # a fresh number, so the peer cannot take the next message for this one
                self.tx_seq = (self.tx_seq + 1) & 0xFF
            else:
                self.stats["retransmits"] += 1
                self._transmit(now)
                return
        if self.in_flight is None and self.outbox:
            mtype, body = self.outbox.pop(0)
            flags = FLAG_SYN if self.syn else 0
            self.in_flight = encode_frame(
                bytes((PROTOCOL_VERSION, mtype, self.tx_seq, flags)) + body)
            self.in_flight_type = mtype
            self.attempts = 0
            self.stats["tx"] += 1
            self._transmit(now)

    def _transmit(self, now):
        self.attempts += 1
        self.sent_at = now
        self._write(self.in_flight)

    def _write(self, data):
        # Never spin on a full stream (a peer that stopped reading would hang the
        # board): a short write leaves a broken frame that the peer's CRC drops, and the
        # retransmission timer sends it again.
        try:
            n = self.stream.write(data)
        except OSError:
            n = 0
        if n != len(data):
            self.stats["short_writes"] += 1
