"""Frames on the serial link: COBS-encoded payload + CRC-32, ended by a 0x00 byte.

COBS (Cheshire & Baker, IEEE/ACM ToN 1999) removes every 0x00 from the frame, so the
delimiter can only mean "frame ends here": after noise the decoder loses at most the
frame it is in and resynchronises at the next 0x00. The CRC-32 (IEEE 802.3, as in
binascii.crc32) over the decoded payload catches what noise leaves inside a frame.

Wire:    0x00 | COBS(payload | crc32(payload) big-endian) | 0x00
The leading 0x00 closes whatever noise or half frame came before, so a frame that
follows a glitch is not lost with it (empty frames between two 0x00 are ignored).
Payload: at most MAX_PAYLOAD bytes; anything longer is dropped before it is decoded.
"""
from binascii import crc32

MAX_PAYLOAD = 512
CRC_SIZE = 4
# COBS adds one byte per 254 bytes of data, plus one.
MAX_ENCODED = MAX_PAYLOAD + CRC_SIZE + (MAX_PAYLOAD + CRC_SIZE) // 254 + 1


class FrameError(ValueError):
    pass


def cobs_encode(data):
    out = bytearray(len(data) + len(data) // 254 + 2)
    code_at = 0
    code = 1
    o = 1
    after_full = False  # the open block follows a full 254-byte block
    for b in data:
        if b:
            out[o] = b
            o += 1
            code += 1
            after_full = False
            if code == 0xFF:
                out[code_at] = code
                code_at = o
                o += 1
                code = 1
                after_full = True
        else:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
            after_full = False
    if after_full:
        # data ended with a full block: no empty block after it (a full block implies
        # no zero), so both sides write the same bytes as the host's cobs package
        return bytes(out[:code_at])
    out[code_at] = code
    return bytes(out[:o])


def cobs_decode_into(buf, n):
    """Decode buf[:n] in place (the output is never longer than the input).
    Returns the decoded length; raises FrameError on a malformed block."""
    i = 0
    o = 0
    while i < n:
        code = buf[i]
        if code == 0:
            raise FrameError("zero byte inside a COBS frame")
        i += 1
        end = i + code - 1
        if end > n:
            raise FrameError("COBS block runs past the frame")
        while i < end:
            buf[o] = buf[i]
            o += 1
            i += 1
        # a block shorter than 255 stands for a zero, except at the very end
        if code < 0xFF and i < n:
            buf[o] = 0
            o += 1
    return o


def encode_frame(payload):
    if not payload:
        raise FrameError("empty payload")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError("payload of %d bytes exceeds %d" % (len(payload), MAX_PAYLOAD))
    crc = crc32(payload) & 0xFFFFFFFF
    return b"\x00" + cobs_encode(bytes(payload) + crc.to_bytes(4, "big")) + b"\x00"


class FrameDecoder:
    """Splits a byte stream into checked payloads, in a buffer allocated once.

    feed() takes whatever the UART returned and calls on_frame(payload) for each good
    frame; bad frames are counted and dropped, never raised, so noise cannot stop the
    link."""

    def __init__(self):
        self.buf = bytearray(MAX_ENCODED)
        self.n = 0
        self.discarding = False  # inside an over-long frame: skip to the next 0x00
        self.frames = 0
        self.crc_errors = 0
        self.cobs_errors = 0
        self.oversize = 0

    def feed(self, data, n, on_frame):
        buf = self.buf
        for i in range(n):
            b = data[i]
            if b:
                if self.discarding:
                    continue
                if self.n == MAX_ENCODED:
                    self.discarding = True
                    self.oversize += 1
                    continue
                buf[self.n] = b
                self.n += 1
                continue
            # delimiter
            count = self.n
            self.n = 0
            if self.discarding:
                self.discarding = False
                continue
            if count:
                payload = self._check(count)
                if payload is not None:
                    on_frame(payload)

    def _check(self, count):
        try:
            size = cobs_decode_into(self.buf, count)
        except FrameError:
            self.cobs_errors += 1
            return None
        if size <= CRC_SIZE:
            self.cobs_errors += 1
            return None
        body = size - CRC_SIZE
        mv = memoryview(self.buf)
        want = int.from_bytes(mv[body:size], "big")
        if crc32(mv[:body]) & 0xFFFFFFFF != want:
            self.crc_errors += 1
            return None
        self.frames += 1
        return bytes(mv[:body])
