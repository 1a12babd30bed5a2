"""Host side of the link framing (docs/protocol.md, "Framing"):
0x00 | COBS(payload | CRC-32 big-endian) | 0x00, payload at most MAX_PAYLOAD bytes."""
import binascii

from cobs import cobs

MAX_PAYLOAD = 512
CRC_SIZE = 4
MAX_ENCODED = MAX_PAYLOAD + CRC_SIZE + (MAX_PAYLOAD + CRC_SIZE) // 254 + 1


class FrameError(ValueError):
    pass


class CRCError(FrameError):
    pass


def encode_frame(payload: bytes) -> bytes:
    if not payload:
        raise FrameError("empty payload")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    crc = binascii.crc32(payload).to_bytes(4, "big")
    return b"\x00" + cobs.encode(bytes(payload) + crc) + b"\x00"


def decode_frame(encoded: bytes) -> bytes:
    """Payload of one frame (without delimiters); FrameError if it is not a good one."""
    if len(encoded) > MAX_ENCODED:
        raise FrameError(f"frame of {len(encoded)} bytes exceeds {MAX_ENCODED}")
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError as exc:
        raise FrameError(f"bad COBS: {exc}") from None
    if len(raw) <= CRC_SIZE:
        raise FrameError("frame too short")
    payload, crc = raw[:-CRC_SIZE], raw[-CRC_SIZE:]
    if binascii.crc32(payload).to_bytes(4, "big") != crc:
        raise CRCError("CRC mismatch")
    return payload


class FrameSplitter:
    """Cuts a byte stream at 0x00 delimiters; returns good payloads, counts bad frames
    (and tells `on_error(kind, size)` of each, for the monitor)."""

    def __init__(self, on_error=None):
        self.on_error = on_error
        self._buf = bytearray()
        self._discarding = False  # inside an over-long frame: skip to the next 0x00
        self.errors = {"crc": 0, "framing": 0, "oversize": 0}

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        *complete, rest = bytes(data).split(b"\x00")
        for piece in complete:
            self._append(piece)
            frame, self._buf = bytes(self._buf), bytearray()
            if self._discarding:
                self._discarding = False
                continue
            if not frame:
                continue
            try:
                out.append(decode_frame(frame))
            except CRCError:
                self._bad("crc", len(frame))
            except FrameError:
                self._bad("framing", len(frame))
        self._append(rest)
        return out

    def _append(self, piece):
        if self._discarding:
            return
        if len(self._buf) + len(piece) > MAX_ENCODED:
            self._discarding = True
            self._bad("oversize", len(self._buf) + len(piece))
            self._buf = bytearray()
            return
        self._buf.extend(piece)

    def _bad(self, kind, size):
        self.errors[kind] += 1
        if self.on_error is not None:
            self.on_error(kind, size)
