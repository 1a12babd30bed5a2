# The other side of the board's DUKPT, for the firmware tests (CPython and MicroPython
# alike): keys walked from the initial key as the issuer walks them (X9.24-3-2017 6.3:
# one derivation per set bit of the counter, most significant first), and the board's
# register record (firmware/dukpt.py) at any counter, filled from those walks. Written
# apart from the firmware's register code, so each checks the other; the host's
# provisioning (board/provision.py) writes the same record.
import cryptolib

KEY_DERIVATION = 0x8000
RECORD_SIZE = 529


def _derive(parent, usage, ikid, counter):
    data = (bytes([1, 1, usage >> 8, usage & 0xFF, 0, 2, 0, 0x80]) + bytes(ikid[4:8])
            + counter.to_bytes(4, "big"))
    return cryptolib.aes(bytes(parent), 1).encrypt(data)


def path_keys(initial_key, ikid, counter):
    """The keys on the way from the initial key to the transaction key of `counter`:
    [initial key, ..., transaction key]."""
    keys = [bytes(initial_key)]
    walked = 0
    for bit in range(31, -1, -1):
        if counter >> bit & 1:
            walked |= 1 << bit
            keys.append(_derive(keys[-1], KEY_DERIVATION, ikid, walked))
    return keys


def transaction_key(initial_key, ikid, counter):
    return path_keys(initial_key, ikid, counter)[-1]


def working_key(initial_key, ikid, counter, usage):
    return _derive(transaction_key(initial_key, ikid, counter), usage, ikid, counter)


def record_at(initial_key, ikid, counter=1, trace=0):
    """The board's record with `counter` next: register i holds the key of the counter
    made of `counter`'s bits above i and bit i, for bit i the lowest set bit of
    `counter` or a clear bit above it (the counters not yet reached); the rest are
    zeros. counter 1 is the record right after the initial key is loaded."""
    record = bytearray(RECORD_SIZE)
    record[0] = 1
    record[1:9] = ikid
    record[9:13] = counter.to_bytes(4, "big")
    record[13:17] = trace.to_bytes(4, "big")
    if counter:
        low = 0
        while not counter >> low & 1:
            low += 1
        for i in range(low, 32):
            if i == low or not counter >> i & 1:
                future = (counter >> (i + 1) << (i + 1)) | 1 << i
                at = 17 + 16 * i
                record[at:at + 16] = transaction_key(initial_key, ikid, future)
    return record
