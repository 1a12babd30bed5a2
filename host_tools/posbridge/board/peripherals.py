"""Simulated card reader and PIN pad for the board emulator: the bytes the real devices
send (docs/peripherals.md), written to a file descriptor or a file object.

Built independently of the firmware's drivers (firmware/card_reader.py,
firmware/keypad.py); tests/host/test_peripherals.py holds the two together.
The test card data here is made up; nothing is logged.
"""
import os
import select
import time

from ..link.pan import luhn_check_digit

STX = 0x02
ETX = 0x03
PIN_PAD_KEYS = "0123456789CBXE"  # digits, Clear, Backspace, cancel (X), Enter
DEFAULT_DISCRETIONARY = "1010000012300000"


def lrc(data) -> int:
    """XOR of the bytes: the record check the reader appends after ETX."""
    value = 0
    for b in data:
        value ^= b
    return value


def track2(pan: str, expiry: str, service_code: str = "201",
           discretionary: str = DEFAULT_DISCRETIONARY) -> str:
    """ISO/IEC 7813 track 2 with its sentinels: ;PAN=YYMM SVC discretionary?"""
    return ";%s=%s%s%s?" % (pan, expiry, service_code, discretionary)


def frame(content: bytes) -> bytes:
    """STX | content | ETX | LRC(content | ETX)."""
    body = bytes(content) + bytes((ETX,))
    return bytes((STX,)) + body + bytes((lrc(body),))


def card_record(pan: str, expiry: str, service_code: str = "201",
                discretionary: str = DEFAULT_DISCRETIONARY) -> bytes:
    """The exact record the reader sends for a swipe. No checks, so tests can build
    bad cards (wrong Luhn digit, past expiry, ...)."""
    return frame(track2(pan, expiry, service_code, discretionary).encode("ascii"))


def bad_read_record() -> bytes:
    """What the reader sends when it could not read the stripe."""
    return frame(b"E")


def corrupt(record: bytes, index: int | None = None, bit: int = 0) -> bytes:
    """`record` with one bit flipped (by default in the middle of the track), as
    line noise would."""
    if index is None:
        index = len(record) // 2
    out = bytearray(record)
    out[index] ^= 1 << bit
    return bytes(out)


def pin_keys(keys: str) -> bytes:
    """The bytes the PIN pad sends for the key presses `keys`, e.g. '1234E'."""
    for ch in keys:
        if ch not in PIN_PAD_KEYS:
            raise ValueError("not a PIN pad key: %r (keys are %s)" % (ch, PIN_PAD_KEYS))
    return keys.encode("ascii")


def write_all(target, data: bytes, timeout: float = 5.0) -> None:
    """Write every byte to an int file descriptor (blocking or not) or a file object."""
    if not isinstance(target, int):
        target.write(data)
        if hasattr(target, "flush"):
            target.flush()
        return
    view = memoryview(data)
    while view:
        try:
            n = os.write(target, view)
        except BlockingIOError:
            _, writable, _ = select.select([], [target], [], timeout)
            if not writable:
                raise TimeoutError("peripheral output not drained within %.1f s" % timeout)
            continue
        view = view[n:]


class CardReaderSim:
    """A card reader: each call sends one record to `target` (fd or file object)."""

    def __init__(self, target):
        self.target = target
        self.records_sent = 0

    def send(self, record: bytes) -> None:
        write_all(self.target, record)
        self.records_sent += 1

    def swipe(self, pan: str, expiry: str, service_code: str = "201",
              discretionary: str = DEFAULT_DISCRETIONARY) -> None:
        self.send(card_record(pan, expiry, service_code, discretionary))

    def bad_read(self) -> None:
        self.send(bad_read_record())


class PinPadSim:
    """A PIN pad: press('1234E') sends the keys to `target` (fd or file object), all at
    once or `interval_s` apart as a person types."""

    def __init__(self, target):
        self.target = target

    def press(self, keys: str, interval_s: float = 0.0) -> None:
        data = pin_keys(keys)
        if interval_s <= 0:
            write_all(self.target, data)
            return
        for i in range(len(data)):
            if i:
                time.sleep(interval_s)
            write_all(self.target, data[i:i + 1])
