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

# what feed() returns when a byte ends a frame (0: not over yet); const() costs no name
_ACK = const(1)
_NACK = const(2)
_FRAME = const(3)   # an answer (TFI D5): its TFI and data are buf[:n]
_ERROR = const(4)   # the chip's error frame (a syntax error in the command it got)
_BAD = const(5)     # a checksum, length or TFI wrong: dropped

# TFI, command code, status and an APDU answer of 256 bytes and SW1 SW2 (the chip's
# limit of 262 bytes is the command's: an APDU with 255 bytes of data, header and Le)
_MAX_DATA = const(264)
# Names cost RAM for good on MicroPython (docs/firmware-memory.md): one class holds the
# frame decoder and the commands, states are const(), errors carry no text.

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


_ACK_MS = const(500)       # the chip acknowledges within a few ms
_ANSWER_MS = const(1500)   # a card's activation (ATS included) or a configuration
_APDU_MS = const(3000)     # a GPO can take a second; the chip's own timeout is the card's
_POLL_MS = const(300)      # at idle, between two looks for a card
_RETRY_MS = const(5000)    # at idle, after the reader failed


class PN532:
    def __init__(self, stream, clock=time.ticks_ms, sleep=time.sleep_ms):
        self.stream = stream
        self.clock = clock
        self.sleep = sleep
        # the frame decoder: a buffer allocated once, the state of the frame it is in
        self.buf = bytearray(_MAX_DATA)
        self.n = 0
        self.len = 0
        self.sum = 0
        self.state = _SYNC
        self.last_rx = 1         # the byte before, for the start code 00 FF
        self.out = bytearray(_MAX_DATA + 10)
        self.rx = bytearray(32)
        self.rx_pos = 0
        self.rx_len = 0
        self.started = False     # woken and configured
        self.deadline = 0        # the next look for a card at idle
        self.failed = False      # the last look failed (said once, not every time)

    # -- frames --

    def feed(self, b):
        """1 ACK, 2 NACK, 3 FRAME (TFI and data in buf[:n]), 4 ERROR or 5 BAD when byte
        b ends a frame, else 0. Bytes between frames (noise, the postamble, a preamble)
        are skipped up to the next start code 00 FF; a frame with a wrong checksum or
        length is dropped whole. Nothing is allocated."""
        s = self.state
        if s == _SYNC:
            if b == 0xFF and self.last_rx == 0:
                self.state = _LEN
            self.last_rx = b
            return 0
        if s == _LEN or s == _XLENL:
            self.len = self.len | b if s == _XLENL else b
            self.state = s + 1
            return 0
        if s == _XLENM:
            self.len = b << 8
            self.state = _XLENL
            return 0
        if s == _DATA:
            self.buf[self.n] = b
            self.n += 1
            self.sum += b
            if self.n == self.len:
                self.state = _DCS
            return 0
        if s == _DCS:
            if (self.sum + b) & 0xFF:
                return self._end(_BAD, b)
            tfi = self.buf[0]
            if tfi == _TFI_CHIP:
                return self._end(_FRAME, 1)
            return self._end(_ERROR if tfi == _TFI_ERROR and self.n == 1 else _BAD, 1)
        n = self.len
        if s == _LCS:
            if n == 0 and b == 0xFF:
                return self._end(_ACK, 1)
            if n == 0xFF and b == 0:
                return self._end(_NACK, 1)
            if n == 0xFF and b == 0xFF:
                self.state = _XLENM
                return 0
            c = n + b
        else:   # _XLCS
            c = (n >> 8) + n + b
        if n == 0 or c & 0xFF or n > len(self.buf):
            return self._end(_BAD, b)
        self.n = 0
        self.sum = 0
        self.state = _DATA
        return 0

    def _end(self, key, b):
        # b: the byte that ended a bad frame may be the 00 of the next start code
        self.state = _SYNC
        self.last_rx = b
        return key

    # -- at idle --

    def poll(self, now):
        """At idle: a target number (a payment card is in the field, activated), None
        (no card, or not yet time to look), or what to show for a moment (a str)."""
        if time.ticks_diff(now, self.deadline) < 0:
            return None
        self.deadline = time.ticks_add(now, _POLL_MS)
        try:
            if not self.started:
                self.begin()
            tg = self.detect()
            if tg < 0:
                self.release(-tg)
        except ReaderError:
            self.started = False
            self.deadline = time.ticks_add(now, _RETRY_MS)
            said = self.failed
            self.failed = True
            return None if said else "Reader error"
        self.failed = False
        if tg < 0:
            self.deadline = time.ticks_add(now, _RETRY_MS)
            return "Not supported"
        return tg or None

    def begin(self):
        """Wake the chip (UM0701-02 6.2.2 and 7.2.11: it sleeps until it sees 0x55 on
        its RX; the zeros give its oscillator time, then a pause before the first
        command, which must be SAMConfiguration) and set it up: SAMConfiguration normal
        mode (no SAM), then RFConfiguration MaxRetries: ATR 0xFF, PSL 1, passive
        activation 1 retry, so a look for a card answers at once when there is none."""
        self._write(b"\x55\x55\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16)
        self.sleep(20)
        self._command(0x14, b"\x01\x14\x01")
        self._command(0x32, b"\x05\xff\x01\x01")
        self.started = True

    # -- commands --

    def detect(self):
        """InListPassiveTarget, one ISO/IEC 14443-A target at 106 kbit/s: its target
        number, 0 when none answered, or minus it for a tag that does not speak ISO/IEC
        14443-4 (SEL_RES bit 6 clear: no payment application can be on it)."""
        a = self._command(0x4A, b"\x01\x00")
        if len(a) < 1 or a[0] == 0:
            return 0
        # NbTg Tg SENS_RES(2) SEL_RES NFCIDLength NFCID1 [ATS]
        if len(a) < 6 or a[1] == 0:
            raise ReaderError()
        return a[1] if a[4] & 0x20 else -a[1]

    def apdu(self, tg, data):
        """InDataExchange: the card's answer to the APDU `data` (its data and SW1 SW2),
        a memoryview valid until the next command."""
        if len(data) > 262:
            raise ReaderError()
        a = self._command(0x40, data, tg, _APDU_MS)
        if len(a) < 1 or a[0] & 0x40:   # no status; or more to come than the chip holds
            raise ReaderError()
        # status (UM0701-02 table 15, low six bits) meaning the card is no longer there
        # to answer: time-out, CRC, parity, framing, RF protocol, format, context,
        # released, card disappeared
        if a[0] & 0x3F in b"\x01\x02\x03\x05\x0b\x13\x27\x29\x2b":
            raise CardGone()
        if a[0]:
            raise ReaderError()
        return a[1:]

    def release(self, tg):
        """InRelease: the card is let go (deselected)."""
        self._command(0x52, bytes((tg,)))

    def _command(self, cmd, data, tg=-1, ms=_ANSWER_MS):
        """Send one command, wait for its ACK and its answer; the answer's data after
        D5 and cmd + 1, a memoryview into buf."""
        # whatever is left (an answer that came too late, noise) belongs to no command
        self.state = _SYNC
        self.last_rx = 1
        self.rx_pos = self.rx_len = 0
        for _ in range(64):
            try:
                if not self.stream.readinto(self.rx):
                    break
            except OSError:   # e.g. EIO from a peer that went away
                break
        self.rx_len = 0
        self._write(self.out, encode(self.out, _TFI_HOST, cmd, data, tg))
        if self._wait(_ACK, _ACK_MS) != _ACK:
            raise ReaderError()
        nacks = 0
        while True:
            kind = self._wait(_FRAME, ms)
            if kind == _FRAME:
                if self.n < 2 or self.buf[1] != cmd + 1:
                    raise ReaderError()
                return memoryview(self.buf)[2:self.n]
            if kind != _BAD or nacks == 2:
                raise ReaderError()
            nacks += 1   # a damaged answer: NACK asks the chip for it again
            self._write(b"\x00\x00\xff\xff\x00\x00", 6)

    def wipe(self):
        """Forget what the card said (track 2 equivalent, PAN) once it is read."""
        for buf in (self.buf, self.out, self.rx):
            for i in range(len(buf)):
                buf[i] = 0

    # -- bytes --

    def _wait(self, key, ms):
        """The first frame of kind `key`, or anything but ACK and NACK when waiting for
        an answer; 0 on time-out."""
        deadline = time.ticks_add(self.clock(), ms)
        rx = self.rx
        while True:
            while self.rx_pos < self.rx_len:
                kind = self.feed(rx[self.rx_pos])
                self.rx_pos += 1
                if kind == key or (key == _FRAME and kind > _NACK):
                    return kind
            if time.ticks_diff(self.clock(), deadline) >= 0:
                return 0
            try:
                n = self.stream.readinto(rx)
            except OSError:   # e.g. EIO from a peer that went away
                n = None
            if n:
                self.rx_pos = 0
                self.rx_len = n
            else:
                self.sleep(1)

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
                raise ReaderError()
            else:
                self.sleep(1)
