"""AES-128 DUKPT, terminal side: the standard's device algorithm (ANSI X9.24-3-2017 6.5),
with its intermediate derivation key registers.

    KSN (12 bytes) = initial key ID (8) | transaction counter (4, big-endian)

Every key is one AES-ECB encryption of 16 bytes of derivation data under its parent key
(6.3.1, 6.3.2, tables 2 and 3), so the board needs nothing but cryptolib's AES-ECB:

    01 | 01 | key usage (2) | 0002 AES-128 | 0080 = 128 bits | initial key ID bytes 4..7
       | a counter (4)

The transaction key of counter c derives (usage 8000, counter c) from the transaction key
of c with its lowest set bit cleared; that of 0 is the initial key. A working key derives
from the transaction key with its usage (1000 PIN encryption, 2000 MAC generation, 2001
MAC verification) and c: its last 8 bytes of data are the KSN's last 8.

The terminal never holds the initial key. It holds 32 registers, register i for counter
bit i, each the transaction key of a counter not yet used, and the next counter n. The
initial key is loaded by filling register i with the key of counter 1 << i (n = 1) and
erasing it: the provisioning tool does that off the board (board/provision.py), so the
initial key is never written to the board's flash. Per transaction (take):

1. the current key is register b, b the lowest set bit of n: the transaction key of n;
2. if n has fewer than 16 one-bits, registers 0..b-1 get the keys of n | 1 << i, derived
   from it (the future keys); with 16 (6.1: at most 16 one-bits in a counter) they would
   all have 17, and are not made;
3. register b is erased, and n moves to n + 1, or with 16 one-bits to n plus its lowest
   set bit, which jumps over every counter with more than 16;
4. after FFFF0000 (the last counter the standard allows) n would pass 32 bits: it is 0,
   the terminal is exhausted and needs a new initial key.

Each register then holds the key of n or of a counter above it, and a key derives only
the keys of counters that extend its own with lower bits, all above it: nothing the
terminal keeps derives a key of a transaction already made. The caller saves the record before it uses the key, so a
reset skips the counter, never reuses it.

The record (terminal_keys.py keeps it on flash as keys.bin), 529 bytes:

    0       format, 1
    1..8    initial key ID
    9..12   n, the next transaction counter (big-endian); 0 once exhausted
    13..16  the last trace number used (terminal_keys.py's)
    17..    32 registers of 16 bytes, register 0 first; an erased one is zeros

Keys come back as bytearrays so the caller can wipe them (wipe.wipe()) when done."""
import cryptolib

from wipe import wipe
try:
    from micropython import const
except ImportError:  # CPython, in tests
    def const(x):  # type: ignore[misc]  # untyped stand-in for the stub's generic const
        return x

KEY_USAGE_PIN_ENCRYPTION = 0x1000
KEY_USAGE_MAC_GENERATION = 0x2000    # MAC on the terminal's requests
KEY_USAGE_MAC_VERIFICATION = 0x2001  # MAC on the issuer's responses, checked here
_KEY_DERIVATION = const(0x8000)      # transaction keys, future keys
RECORD_SIZE = const(529)
_COUNTER = const(9)        # record offsets
_REGISTERS = const(17)


class DUKPTError(ValueError):
    # messages are a word or two: a long string costs RAM while the module is loaded
    pass


def _data(usage, ksn):
    """Derivation data (6.3.2) whose last 8 bytes are the KSN's (initial key ID bytes
    4..7 | counter); the record holds them at the same place (bytes 5..12)."""
    data = bytearray(b"\x01\x01\x00\x00\x00\x02\x00\x80") + ksn[4:12]
    data[2] = usage >> 8
    data[3] = usage & 0xFF
    return data


def take(record):
    """The transaction key of the record's counter, as (key, KSN), and the record moved
    on to the next counter (steps 1 to 4 above). Save the record before using the key.
    The caller has checked the record's size and format."""
    # the counter is worked on as its 4 bytes: above 2**30 an int is a long on the
    # board, allocated anew by every operation
    ksn = bytes(record[1:13])
    bits = 0
    for x in ksn[8:12]:
        while x:
            x &= x - 1      # clears the lowest set bit
            bits += 1
    if not bits:
        raise DUKPTError("exhausted")
    b = 0
    while not (ksn[11 - (b >> 3)] >> (b & 7)) & 1:
        b += 1
    at = _REGISTERS + 16 * b
    key = bytearray(record[at:at + 16])
    wipe(memoryview(record)[at:at + 16])
    step = b
    if bits < 16:
        data = _data(_KEY_DERIVATION, ksn)
        aes = cryptolib.aes(key, 1)    # 1: ECB; one key schedule for every future key
        for i in range(b):
            # the counter with bit i set, i below its lowest set bit
            data[15 - (i >> 3)] |= 1 << (i & 7)
            aes.encrypt(data, memoryview(record)[_REGISTERS + 16 * i:_REGISTERS + 16 * i + 16])
            data[15 - (i >> 3)] &= ~(1 << (i & 7))
        wipe(data)
        step = 0
    # n + 1, or n plus its lowest set bit; past FFFF0000 every byte carries out to 0
    at = _COUNTER + 3 - (step >> 3)
    carry = 1 << (step & 7)
    while carry and at >= _COUNTER:
        carry += record[at]
        record[at] = carry & 0xFF
        carry >>= 8
        at -= 1
    return key, ksn


def working_keys(transaction_key, ksn, usages):
    """The working keys for `usages` (a tuple of KEY_USAGE_*), in that order, as a list
    of bytearrays, from the transaction key of `ksn`."""
    aes = cryptolib.aes(transaction_key, 1)
    keys = []
    for usage in usages:
        key = bytearray(16)
        aes.encrypt(_data(usage, ksn), key)
        keys.append(key)
    return keys
