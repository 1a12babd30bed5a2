"""ISO 9564-1 format 4 PIN block (AES, 16 bytes), terminal side: encipherment only.
Decipherment belongs to the issuer (host_tools/posbridge/issuer/dukpt.py).

Plain text PIN field (ISO 9564-1:2017 9.4.2), 32 nibbles:
    4 | PIN length (4..C) | PIN digits | fill A up to nibble 15 | 8 random bytes
Plain text PAN field, 32 nibbles:
    PAN length - 12 (0..7; 0 when the PAN has 12 digits or fewer) | the PAN, right-
    justified in 12 digits with leading zeros when shorter | zeros to the end
Encipherment (9.4.2.3): A = AES(K, PIN field); B = A xor PAN field; block = AES(K, B).

The clear PIN arrives as a bytearray (or writable memoryview) of ASCII digits. make_block()
overwrites it with zeros before it returns or raises, and so every other buffer that held
clear PIN digits (the plain PIN field); the PAN field is wiped too. Errors never quote a
digit. The random fill comes from os.urandom; tests may pass `fill` (8 bytes) to get the
standard's reproducible example.
"""
import os
import cryptolib

from wipe import wipe as _wipe

BLOCK_SIZE = 16
MIN_PIN = 4
MAX_PIN = 12
MAX_PAN = 19
_MODE_ECB = 1


class PinBlockError(ValueError):
    pass


def _set_nibble(field, index, value):
    if index & 1:
        field[index >> 1] = (field[index >> 1] & 0xF0) | value
    else:
        field[index >> 1] = (field[index >> 1] & 0x0F) | (value << 4)


def _digits_ok(digits):
    for d in digits:
        if d < 0x30 or d > 0x39:
            return False
    return True


def pan_field(pan, field=None):
    """The plain text PAN field of `pan` (ASCII digits, str or bytes, 1 to 19 of them)."""
    if isinstance(pan, str):
        pan = pan.encode()
    n = len(pan)
    if n < 1 or n > MAX_PAN or not _digits_ok(pan):
        raise PinBlockError("PAN")
    if field is None:
        field = bytearray(BLOCK_SIZE)
    else:
        _wipe(field)
    if n > 12:
        _set_nibble(field, 0, n - 12)
    start = 1 + (12 - n if n < 12 else 0)  # right-justify a short PAN in 12 digits
    for i in range(n):
        _set_nibble(field, start + i, pan[i] - 0x30)
    return field


def _pin_field(pin, fill, field):
    n = len(pin)
    field[0] = 0x40 | n                        # control field 4, PIN length
    for k in range(14):                        # nibbles 2..15: digits, then fill A
        _set_nibble(field, 2 + k, pin[k] - 0x30 if k < n else 0xA)
    for i in range(8):                         # bytes 8..15: random fill
        field[8 + i] = fill[i]


def make_block(pin_key, pin, pan, fill=None):
    """The enciphered format 4 PIN block (16 bytes) of `pin` bound to `pan` under the
    DUKPT PIN encryption key. `pin` (bytearray of ASCII digits) is zeroed on return."""
    field = bytearray(BLOCK_SIZE)
    pan_buf = bytearray(BLOCK_SIZE)
    try:
        if not isinstance(pin, (bytearray, memoryview)):
            raise PinBlockError("PIN type")
        if len(pin) < MIN_PIN or len(pin) > MAX_PIN or not _digits_ok(pin):
            raise PinBlockError("PIN length")
        if fill is None:
            fill = os.urandom(8)
        elif len(fill) != 8:
            raise PinBlockError("fill size")
        if len(pin_key) != 16:
            raise PinBlockError("key size")
        pan_field(pan, pan_buf)
        _pin_field(pin, fill, field)
        _wipe(pin)
        cipher = cryptolib.aes(pin_key, _MODE_ECB)
        cipher.encrypt(field, field)           # A
        for i in range(BLOCK_SIZE):
            field[i] ^= pan_buf[i]             # B
        cipher.encrypt(field, field)           # the PIN block
        return bytes(field)
    finally:
        if isinstance(pin, (bytearray, memoryview)):
            _wipe(pin)
        _wipe(field)
        _wipe(pan_buf)
