# AES-128 DUKPT, terminal side (ANSI X9.24-3-2017 6.5, the device algorithm with its
# intermediate derivation key registers): the standard's vectors, the counter rules (at
# most 16 one-bits, exhaustion after FFFF0000) and the registers' state after each
# transaction, against keys walked from the initial key apart from the firmware's code
# (key_loading.py). The vectors are the AES-128 BDK set of the X9.24-3-2017 test vector
# supplement: initial key, KSNs, transaction keys and working keys of counters 1 to 3
# (reference_vectors.py).
import cryptolib

import dukpt
from dukpt import DUKPTError
from fwtest import raises
from key_loading import record_at, transaction_key
from reference_vectors import load, unhex


def _provisioned():
    ref = load()
    return ref, unhex(ref["initial_key"]), unhex(ref["initial_key_id"])


def _counter(record):
    return int.from_bytes(bytes(record[9:13]), "big")


def _register(record, i):
    return bytes(record[17 + 16 * i:33 + 16 * i])


def _one_bits(counter):
    return bin(counter).count("1")


def _one_step(parent, ikid, usage, counter):
    # One derivation written out from the derivation data table (X9.24-3 6.3.2)
    data = (bytes([1, 1, usage >> 8, usage & 0xFF, 0, 2, 0, 0x80]) + bytes(ikid[4:8])
            + counter.to_bytes(4, "big"))
    return cryptolib.aes(bytes(parent), 1).encrypt(data)


def test_loading_the_initial_key_fills_each_register_with_one_derivation():
    # 6.5: register i holds the key of counter 1 << i, one step from the initial key;
    # the record holds no initial key, and the first counter is 1
    _, ik, ikid = _provisioned()
    record = record_at(ik, ikid)
    assert _counter(record) == 1 and bytes(record[1:9]) == ikid
    for i in range(32):
        assert _register(record, i) == _one_step(ik, ikid, 0x8000, 1 << i), i
    assert ik not in bytes(record)


def test_the_registers_give_the_reference_transaction_and_working_keys():
    ref, ik, ikid = _provisioned()
    record = record_at(ik, ikid)
    usages = (dukpt.KEY_USAGE_PIN_ENCRYPTION, dukpt.KEY_USAGE_MAC_GENERATION,
              0x3000)   # data encryption: in the vectors, not used by the board
    for tx in ref["transactions"]:
        key, ksn = dukpt.take(record)
        assert ksn == unhex(tx["ksn"])
        assert bytes(key) == unhex(tx["transaction_key"]), tx["ksn"]
        keys = dukpt.working_keys(key, ksn, usages)
        assert [bytes(k) for k in keys] == [unhex(tx["pin_encryption_key"]),
                                            unhex(tx["mac_generation_key"]),
                                            unhex(tx["data_encryption_key"])]


def test_a_transaction_erases_its_register_and_fills_the_future_keys_below_it():
    _, ik, ikid = _provisioned()
    record = record_at(ik, ikid, 0x00000100)
    before = bytes(record)
    key, ksn = dukpt.take(record)
    assert bytes(key) == _register(before, 8) == transaction_key(ik, ikid, 0x100)
    assert _register(record, 8) == bytes(16)                     # erased
    for i in range(8):    # the keys of 101, 102, 104... each one step from it
        assert _register(record, i) == _one_step(key, ikid, 0x8000, 0x100 | 1 << i)
    for i in range(9, 32):
        assert _register(record, i) == _register(before, i)      # untouched
    assert _counter(record) == 0x101


def _brute_force_next(counter):
    counter += 1
    while _one_bits(counter) > 16:
        counter += 1
    return counter


def test_each_transaction_leaves_the_record_a_fresh_load_would_have_at_the_next_counter():
    # the counters follow the smallest allowed successor, skipping any with more than 16
    # one-bits, and the registers after each are exactly the future keys of the next
    _, ik, ikid = _provisioned()
    for start, steps in ((1, 20), (0x0000FFFE, 3), (0x0001FFFE, 3), (0x00FFFF00, 3),
                         (0x7FFF8000, 2), (0x5555AAAA, 2), (0xFFFE8000, 1)):
        record = record_at(ik, ikid, start, 41)
        counter = start
        for _ in range(steps):
            key, ksn = dukpt.take(record)
            assert ksn == ikid + counter.to_bytes(4, "big")
            assert bytes(key) == transaction_key(ik, ikid, counter), hex(counter)
            counter = _brute_force_next(counter)
            assert record == record_at(ik, ikid, counter, 41), hex(counter)


def test_exhausted_after_the_last_counter():
    _, ik, ikid = _provisioned()
    record = record_at(ik, ikid, 0xFFFE8000)
    dukpt.take(record)
    assert _counter(record) == 0xFFFF0000
    key, ksn = dukpt.take(record)
    assert bytes(key) == transaction_key(ik, ikid, 0xFFFF0000)
    assert _counter(record) == 0 and bytes(record[17:]) == bytes(512)   # no key left
    err = raises(DUKPTError, dukpt.take, record)
    assert "exhausted" in str(err)


def test_nothing_left_derives_a_used_key():
    # after each transaction no register is the initial key or a key on the path to a
    # counter already used (the only keys those could be derived from)
    _, ik, ikid = _provisioned()
    record = record_at(ik, ikid)
    earlier = set()
    for _ in range(12):
        key, ksn = dukpt.take(record)
        for k in _path(ik, ikid, int.from_bytes(ksn[8:12], "big")):
            earlier.add(k)
        for i in range(32):
            assert _register(record, i) not in earlier, i


def _path(ik, ikid, counter):
    keys = [bytes(ik)]
    walked = 0
    for bit in range(31, -1, -1):
        if counter >> bit & 1:
            walked |= 1 << bit
            keys.append(transaction_key(ik, ikid, walked))
    return keys
