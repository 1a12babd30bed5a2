"""NXP PN532 contactless reader on its high-speed UART (HSU): frames, commands, and the
ISO/IEC 14443-4 card in its field. docs/peripherals.md has the bytes and the wiring.

Frames (NXP PN532 User Manual UM0701-02, 6.2.1), TFI D4 host -> PN532, D5 PN532 -> host:
    normal    00 00 FF LEN LCS TFI data DCS 00            LEN + LCS = 0 (mod 256)
    extended  00 00 FF FF FF LENM LENL LCS TFI data DCS 00 LENM + LENL + LCS = 0
    ACK 00 00 FF 00 FF 00      NACK 00 00 FF FF 00 00     error 00 00 FF 01 FF 7F 81 00
LEN counts TFI and data; TFI + data + DCS = 0. Each command is acknowledged (ACK)
before its answer comes; a host that got a damaged answer sends NACK and the chip sends
it again.

The reader is driven from the polled main loop, so each call is short except the card
read itself: at idle poll() asks for a card once in a while (the chip tries once: its
MaxRetries are set low), and a visit reads the card with apdu(), which waits for the
card up to a few seconds (EMV cards take a second over a GPO). Errors are two:
ReaderError (no answer, garbage, a checksum wrong twice, an error frame) and CardGone
(the card left the field or stopped answering); neither leaves a half frame behind.
"""
import time

from micropython import const

# Decoder.feed results; 0: the frame is not over yet
ACK = const(1)
NACK = const(2)
FRAME = const(3)   # an answer (TFI D5): its TFI and data are buf[:n]
ERROR = const(4)   # the chip's error frame (a syntax error in the command it got)
BAD = const(5)     # a checksum, length or TFI wrong: dropped

# TFI, command code, status and an APDU answer of 256 bytes and SW1 SW2 (the chip's
# limit of 262 bytes is the command's: an APDU with 255 bytes of data, header and Le)
MAX_DATA = const(264)

_SYNC = const(0)
_LEN = const(1)
_LCS = const(2)
_XLENM = const(3)
_XLENL = const(4)
_XLCS = const(5)
_DATA = const(6)
_DCS = const(7)

_TFI_HOST = const(0xD4)
_TFI_CHIP = const(0xD5)
_TFI_ERROR = const(0x7F)


class Decoder:
    """Frames out of bytes, one byte at a time, in a buffer allocated once. Bytes
    between frames (noise, the postamble, a preamble) are skipped up to the next start
    code 00 FF; a frame with a wrong checksum or length is dropped whole."""

    def __init__(self, size=MAX_DATA):
        self.buf = bytearray(size)
        self.n = 0
        self.state = _SYNC
        self.prev = 1
        self.len = 0
        self.sum = 0

    def reset(self):
        self.state = _SYNC
        self.prev = 1

    def feed(self, b):
        """ACK, NACK, FRAME, ERROR or BAD when byte b ends a frame, else 0."""
        s = self.state
        if s == _SYNC:
            if b == 0xFF and self.prev == 0:
                self.state = _LEN
            self.prev = b
            return 0
        if s == _LEN:
            self.len = b
            self.state = _LCS
            return 0
        if s == _LCS:
            n = self.len
            if n == 0 and b == 0xFF:
                return self._end(ACK, 1)
            if n == 0xFF and b == 0:
                return self._end(NACK, 1)
            if n == 0xFF and b == 0xFF:
                self.state = _XLENM
                return 0
            if n == 0 or (n + b) & 0xFF:
                return self._end(BAD, b)
            return self._body()
        if s == _XLENM:
            self.len = b << 8
            self.state = _XLENL
            return 0
        if s == _XLENL:
            self.len |= b
            self.state = _XLCS
            return 0
        if s == _XLCS:
            if self.len == 0 or ((self.len >> 8) + self.len + b) & 0xFF:
                return self._end(BAD, b)
            return self._body()
        if s == _DATA:
            self.buf[self.n] = b
            self.n += 1
            self.sum += b
            if self.n == self.len:
                self.state = _DCS
            return 0
        # _DCS
        if (self.sum + b) & 0xFF:
            return self._end(BAD, b)
        tfi = self.buf[0]
        if tfi == _TFI_CHIP:
            return self._end(FRAME, 1)
        if tfi == _TFI_ERROR and self.n == 1:
            return self._end(ERROR, 1)
        return self._end(BAD, 1)

    def _body(self):
        if self.len > len(self.buf):
            return self._end(BAD, 1)
        self.n = 0
        self.sum = 0
        self.state = _DATA
        return 0

    def _end(self, kind, prev):
        # prev: the byte that ended a bad frame may be the 00 of the next start code
        self.state = _SYNC
        self.prev = prev
        return kind


def encode(out, tfi, cmd, data, tg=-1):
    """A frame of TFI, command code, target number (if tg >= 0) and data, written into
    out; returns its length. Extended when TFI and data are over 255 bytes."""
    n = len(data) + (3 if tg >= 0 else 2)
    out[0] = 0
    out[1] = 0
    out[2] = 0xFF
    if n > 255:
        out[3] = 0xFF
        out[4] = 0xFF
        out[5] = n >> 8
        out[6] = n & 0xFF
        out[7] = -(out[5] + out[6]) & 0xFF
        i = 8
    else:
        out[3] = n
        out[4] = -n & 0xFF
        i = 5
    out[i] = tfi
    out[i + 1] = cmd
    s = tfi + cmd
    i += 2
    if tg >= 0:
        out[i] = tg
        s += tg
        i += 1
    for b in data:
        out[i] = b
        s += b
        i += 1
    out[i] = -s & 0xFF
    out[i + 1] = 0
    return i + 2


class ReaderError(Exception):
    pass


class CardGone(Exception):
    pass


_NACK_FRAME = b"\x00\x00\xff\xff\x00\x00"
# HSU wake-up (UM0701-02 7.2.11 and 6.2.2): the chip sleeps until it sees 0x55 on its
# RX; the zeros that follow give its oscillator time, and a pause before the first
# command, which must be SAMConfiguration.
_WAKE = b"\x55\x55\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
_WAKE_PAUSE_MS = const(20)
_ACK_MS = const(500)       # the chip acknowledges within a few ms
_ANSWER_MS = const(1500)   # a card's activation (ATS included) or a configuration
_APDU_MS = const(3000)     # a GPO can take a second; the chip's own timeout is the card's
_POLL_MS = const(300)      # at idle, between two looks for a card
_RETRY_MS = const(5000)    # at idle, after the reader failed
# InDataExchange status (UM0701-02 table 15, low six bits) that mean the card is no
# longer there to answer: time-out, CRC, parity, framing, RF protocol, format, context,
# released, card disappeared
_GONE = b"\x01\x02\x03\x05\x0b\x13\x27\x29\x2b"


class PN532:
    def __init__(self, stream, clock=time.ticks_ms, sleep=time.sleep_ms):
        self.stream = stream
        self.clock = clock
        self.sleep = sleep
        self.dec = Decoder()
        self.out = bytearray(MAX_DATA + 10)
        self.rx = bytearray(32)
        self.rpos = 0
        self.rlen = 0
        self.ready = False   # woken and configured
        self.due = 0         # the next look for a card at idle
        self.failed = False  # the last look failed (said once, not every time)

    # -- at idle --

    def poll(self, now):
        """At idle: a target number (a payment card is in the field, activated), None
        (no card, or not yet time to look), or what to show for a moment (a str)."""
        if time.ticks_diff(now, self.due) < 0:
            return None
        self.due = time.ticks_add(now, _POLL_MS)
        try:
            if not self.ready:
                self.begin()
            tg = self.detect()
            if tg < 0:
                self.release(-tg)
        except ReaderError:
            self.ready = False
            self.due = time.ticks_add(now, _RETRY_MS)
            said = self.failed
            self.failed = True
            return None if said else "Reader error"
        self.failed = False
        if tg < 0:
            self.due = time.ticks_add(now, _RETRY_MS)
            return "Not supported"
        return tg or None

    def begin(self):
        """Wake the chip and set it up: SAMConfiguration normal mode (no SAM), then
        RFConfiguration MaxRetries: ATR 0xFF, PSL 1, passive activation 1 retry, so a
        look for a card answers at once when there is none."""
        self._write(_WAKE, len(_WAKE))
        self.sleep(_WAKE_PAUSE_MS)
        self.command(0x14, b"\x01\x14\x01")
        self.command(0x32, b"\x05\xff\x01\x01")
        self.ready = True

    # -- commands --

    def detect(self):
        """InListPassiveTarget, one ISO/IEC 14443-A target at 106 kbit/s: its target
        number, 0 when none answered, or minus it for a tag that does not speak ISO/IEC
        14443-4 (SEL_RES bit 6 clear: no payment application can be on it)."""
        a = self.command(0x4A, b"\x01\x00")
        if len(a) < 1 or a[0] == 0:
            return 0
        # NbTg Tg SENS_RES(2) SEL_RES NFCIDLength NFCID1 [ATS]
        if len(a) < 6 or a[1] == 0:
            raise ReaderError("target")
        return a[1] if a[4] & 0x20 else -a[1]

    def apdu(self, tg, apdu):
        """InDataExchange: the card's answer to `apdu` (data and SW1 SW2), a memoryview
        valid until the next command."""
        if len(apdu) > 262:
            raise ReaderError("apdu")
        a = self.command(0x40, apdu, tg, _APDU_MS)
        if len(a) < 1:
            raise ReaderError("status")
        status = a[0] & 0x3F
        if status:
            if status in _GONE:
                raise CardGone()
            raise ReaderError("status")
        if a[0] & 0x40:   # more to come: an answer longer than the chip holds
            raise ReaderError("chained")
        return a[1:]

    def release(self, tg):
        """InRelease: the card is let go (deselected)."""
        self.command(0x52, bytes((tg,)))

    def command(self, cmd, data, tg=-1, wait_ms=_ANSWER_MS):
        """Send one command, wait for its ACK and its answer; the answer's data after
        D5 and cmd + 1, a memoryview into the decoder's buffer."""
        self._flush()
        self._write(self.out, encode(self.out, _TFI_HOST, cmd, data, tg))
        if self._wait(ACK, _ACK_MS) != ACK:
            raise ReaderError("no ack")
        nacks = 0
        while True:
            kind = self._wait(FRAME, wait_ms)
            if kind == FRAME:
                dec = self.dec
                if dec.n < 2 or dec.buf[1] != cmd + 1:
                    raise ReaderError("answer")
                return memoryview(dec.buf)[2:dec.n]
            if kind == BAD and nacks < 2:
                nacks += 1
                self._write(_NACK_FRAME, 6)
                continue
            raise ReaderError("no answer" if kind == 0 else "bad answer")

    def wipe(self):
        """Forget what the card said (track 2 equivalent, PAN) once it is read."""
        for buf in (self.dec.buf, self.out, self.rx):
            for i in range(len(buf)):
                buf[i] = 0

    # -- bytes --

    def _wait(self, want, ms):
        """The first frame of kind `want`, or anything but ACK and NACK when waiting for
        an answer; 0 on time-out."""
        deadline = time.ticks_add(self.clock(), ms)
        dec = self.dec
        rx = self.rx
        while True:
            while self.rpos < self.rlen:
                kind = dec.feed(rx[self.rpos])
                self.rpos += 1
                if kind == want or (want == FRAME and kind > NACK):
                    return kind
            if time.ticks_diff(self.clock(), deadline) >= 0:
                return 0
            try:
                n = self.stream.readinto(rx)
            except OSError:
                n = None
            if n:
                self.rpos = 0
                self.rlen = n
            else:
                self.sleep(1)

    def _flush(self):
        # whatever is left (an answer that came too late, noise) belongs to no command
        self.dec.reset()
        self.rpos = self.rlen = 0
        for _ in range(64):
            try:
                n = self.stream.readinto(self.rx)
            except OSError:
                n = None
            if not n:
                return

    def _write(self, data, n):
        view = memoryview(data)
        deadline = time.ticks_add(self.clock(), _ACK_MS)
        i = 0
        while i < n:
            try:
                w = self.stream.write(view[i:n])
            except OSError:
                w = None
            if w:
                i += w
            elif time.ticks_diff(self.clock(), deadline) >= 0:
                raise ReaderError("write")
            else:
                self.sleep(1)
