"""AES-128 DUKPT, terminal side (ANSI X9.24-3-2017).

The terminal is provisioned with its initial key and its 8-byte initial key ID and nothing
else: the base derivation key (BDK) stays with the issuer. For each transaction it derives
the transaction key from the initial key and the 32-bit transaction counter, then the
working keys it needs (PIN, MAC, data) from the transaction key.

    KSN (12 bytes) = initial key ID (8) | transaction counter (4, big-endian)

Derivation data, 16 bytes (X9.24-3 6.3.2, tables 2 and 3):

    01 | 01 | key usage (2) | 0002 AES-128 | 0080 = 128 bits | 8 bytes of KSN data

version 01; key block counter 01 (an AES-128 key is one block of key material); the
8 bytes are the initial key ID bytes 4..7 followed by a counter value. A derived AES-128
key is one AES-ECB encryption of the derivation data under the parent key (6.3.1), so the
board needs nothing but cryptolib's AES-ECB.

Transaction key (6.1, 6.3.1): start from the initial key and walk the counter from its
most significant set bit down; each set bit derives the next intermediate key (usage 8000)
from the previous one, the derivation data carrying the counter bits walked so far. A
counter with k one-bits costs k AES encryptions, so the standard limits a counter to at
most 16 one-bits (6.1): counters with more are never used, the next counter skips them,
and the largest usable counter is FFFF0000. FFFFFFFF is reserved for the update key
(6.5.2). After FFFF0000 the device is exhausted and needs a new initial key.

Working keys: one derivation from the transaction key with the key usage (1000 PIN
encryption, 2000 MAC generation, 2001 MAC verification, 3000/3001 data encryption/
decryption), the KSN data being initial key ID bytes 4..7 | the whole counter.

Unlike the standard's device algorithm (future-key registers, the initial key erased
once they are filled), this terminal keeps the initial key, as provisioned, and re-walks
the counter per transaction (at most 16 + 1 AES blocks per key). It is simpler and needs no
register file on flash, but a captured device can derive keys of past transactions.

Keys come back as bytearrays so the caller can wipe them (wipe.wipe()) when done.
"""
import cryptolib

from wipe import wipe

KEY_USAGE_PIN_ENCRYPTION = 0x1000
KEY_USAGE_MAC_GENERATION = 0x2000    # MAC on the terminal's requests
KEY_USAGE_MAC_VERIFICATION = 0x2001  # MAC on the issuer's responses, checked here
KEY_USAGE_DATA_ENCRYPTION = 0x3000
KEY_USAGE_DATA_DECRYPTION = 0x3001
KEY_USAGE_KEY_DERIVATION = 0x8000    # intermediate (transaction) keys
KEY_USAGE_INITIAL_KEY = 0x8001       # initial key from the BDK: issuer side only

_ALGORITHM_AES128 = 0x0002
_KEY_BITS = 128
_MODE_ECB = 1

MAX_ONE_BITS = 16           # 6.1: at most 16 one-bits in a transaction counter
LAST_COUNTER = 0xFFFF0000   # the largest 32-bit value with at most 16 one-bits
KEY_SIZE = 16
INITIAL_KEY_ID_SIZE = 8
KSN_SIZE = 12


class DUKPTError(ValueError):
    # messages are a word or two: a long string costs RAM while the module is loaded
    pass


def one_bits(counter):
    n = 0
    while counter:
        counter &= counter - 1  # clears the lowest set bit
        n += 1
    return n


def check_counter(counter):
    """Raise DUKPTError unless `counter` is a transaction counter the standard allows."""
    if not isinstance(counter, int) or counter < 0 or counter > 0xFFFFFFFF:
        raise DUKPTError("counter range")
    if counter == 0:
        raise DUKPTError("counter 0")
    if one_bits(counter) > MAX_ONE_BITS:
        raise DUKPTError("counter bits")


def next_counter(counter):
    """The transaction counter to use after `counter` (0 right after provisioning): the
    smallest larger value with at most 16 one-bits. While a candidate has too many, adding
    its lowest set bit jumps over values that all have too many as well (they keep the
    same upper bits and add lower ones), as the standard's device algorithm does.
    Raises DUKPTError when no counter is left (device exhausted: re-provision it)."""
    if not isinstance(counter, int) or counter < 0:
        raise DUKPTError("counter range")
    if counter >= LAST_COUNTER:
        raise DUKPTError("exhausted")
    counter += 1
    while one_bits(counter) > MAX_ONE_BITS:
        counter += counter & -counter
    if counter > LAST_COUNTER:
        raise DUKPTError("exhausted")
    return counter


def _check_size(name, value, size):
    if len(value) != size:
        raise DUKPTError(name + " size")


def make_ksn(initial_key_id, counter):
    """KSN = initial key ID (8 bytes) | transaction counter (4 bytes, big-endian)."""
    _check_size("key ID", initial_key_id, INITIAL_KEY_ID_SIZE)
    check_counter(counter)
    return bytes(initial_key_id) + counter.to_bytes(4, "big")


def split_ksn(ksn):
    """(initial key ID, transaction counter) of a 12-byte KSN; the counter is checked."""
    _check_size("KSN", ksn, KSN_SIZE)
    counter = int.from_bytes(bytes(ksn[8:12]), "big")
    check_counter(counter)
    return bytes(ksn[0:8]), counter


def _derivation_data(usage, initial_key_id):
    """Derivation data (6.3.2) with its last 4 bytes (the counter part) still zero."""
    data = bytearray(16)
    data[0] = 0x01                     # version
    data[1] = 0x01                     # key block counter: one block for 128 bits
    data[2] = usage >> 8
    data[3] = usage & 0xFF
    data[4] = _ALGORITHM_AES128 >> 8
    data[5] = _ALGORITHM_AES128 & 0xFF
    data[6] = _KEY_BITS >> 8
    data[7] = _KEY_BITS & 0xFF
    for i in range(4):
        data[8 + i] = initial_key_id[4 + i]  # initial key ID bytes 4..7
    return data


def _derive(parent_key, data, out):
    # 6.3.1: key material = AES-ECB(parent key, derivation data), one block for AES-128.
    # cryptolib expands the key when the object is made, so `out` may be `parent_key`.
    cryptolib.aes(parent_key, _MODE_ECB).encrypt(data, out)


def transaction_key(initial_key, initial_key_id, counter):
    """The transaction key for `counter`, as a new bytearray (wipe it when done)."""
    _check_size("key", initial_key, KEY_SIZE)
    _check_size("key ID", initial_key_id, INITIAL_KEY_ID_SIZE)
    check_counter(counter)
    key = bytearray(initial_key)
    data = _derivation_data(KEY_USAGE_KEY_DERIVATION, initial_key_id)
    # Walk the counter byte by byte, most significant first (no big integers on the
    # board): data[12..15] accumulates the counter bits walked so far.
    for i in range(4):
        byte = (counter >> (24 - 8 * i)) & 0xFF
        mask = 0x80
        while mask:
            if byte & mask:
                data[12 + i] |= mask
                _derive(key, data, key)
            mask >>= 1
    return key


def working_key(transaction_key, initial_key_id, counter, usage):
    """A working key (KEY_USAGE_*) derived from the transaction key of `counter`."""
    _check_size("key", transaction_key, KEY_SIZE)
    _check_size("key ID", initial_key_id, INITIAL_KEY_ID_SIZE)
    check_counter(counter)
    data = _derivation_data(usage, initial_key_id)
    for i in range(4):
        data[12 + i] = (counter >> (24 - 8 * i)) & 0xFF
    key = bytearray(KEY_SIZE)
    _derive(transaction_key, data, key)
    return key


def working_keys(initial_key, initial_key_id, counter, usages):
    """The working keys for `usages` (a tuple of KEY_USAGE_*), in that order, as a list
    of bytearrays; the transaction key in between is wiped."""
    tk = transaction_key(initial_key, initial_key_id, counter)
    try:
        return [working_key(tk, initial_key_id, counter, u) for u in usages]
    finally:
        wipe(tk)
