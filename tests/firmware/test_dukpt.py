# AES-128 DUKPT, terminal side (ANSI X9.24-3-2017): the standard's vectors, the counter
# rules (at most 16 one-bits, exhaustion after FFFF0000) and the derivation structure.
# The vectors are the AES-128 BDK set of the X9.24-3-2017 test vector supplement: initial
# key, KSNs, transaction keys and working keys of counters 1 to 3 (reference_vectors.py).
import cryptolib

import dukpt
from dukpt import DUKPTError
from fwtest import raises
from reference_vectors import load, unhex
from wipe import wipe


def _provisioned():
    ref = load()
    return ref, unhex(ref["initial_key"]), unhex(ref["initial_key_id"])


def _counter(ksn_hex):
    return int.from_bytes(unhex(ksn_hex)[8:12], "big")


def test_ksn_is_initial_key_id_then_counter():
    ref, _, ikid = _provisioned()
    for tx in ref["transactions"]:
        counter = _counter(tx["ksn"])
        assert dukpt.make_ksn(ikid, counter) == unhex(tx["ksn"])
        assert dukpt.split_ksn(unhex(tx["ksn"])) == (ikid, counter)


def test_transaction_keys_match_reference():
    ref, ik, ikid = _provisioned()
    for tx in ref["transactions"]:
        tk = dukpt.transaction_key(ik, ikid, _counter(tx["ksn"]))
        assert bytes(tk) == unhex(tx["transaction_key"]), tx["ksn"]


def test_working_keys_match_reference():
    ref, ik, ikid = _provisioned()
    usages = (dukpt.KEY_USAGE_PIN_ENCRYPTION, dukpt.KEY_USAGE_MAC_GENERATION,
              dukpt.KEY_USAGE_DATA_ENCRYPTION)
    for tx in ref["transactions"]:
        counter = _counter(tx["ksn"])
        tk = dukpt.transaction_key(ik, ikid, counter)
        for usage, name in zip(usages, ("pin_encryption_key", "mac_generation_key",
                                        "data_encryption_key")):
            assert bytes(dukpt.working_key(tk, ikid, counter, usage)) == unhex(tx[name]), name
        keys = dukpt.working_keys(ik, ikid, counter, usages)
        assert [bytes(k) for k in keys] == [unhex(tx["pin_encryption_key"]),
                                            unhex(tx["mac_generation_key"]),
                                            unhex(tx["data_encryption_key"])]


def test_inputs_are_not_modified():
    ref, ik, ikid = _provisioned()
    ik_copy = bytearray(ik)
    tk = dukpt.transaction_key(ik_copy, ikid, 3)
    assert bytes(ik_copy) == ik
    tk_before = bytes(tk)
    dukpt.working_key(tk, ikid, 3, dukpt.KEY_USAGE_PIN_ENCRYPTION)
    assert bytes(tk) == tk_before


def _one_step(parent, ikid, usage, counter):
    # One derivation written out from the derivation data table (X9.24-3 6.3.2), to check
    # the module's walk independently of it.
    data = (bytes([1, 1, usage >> 8, usage & 0xFF, 0, 2, 0, 0x80]) + bytes(ikid[4:8])
            + counter.to_bytes(4, "big"))
    return cryptolib.aes(bytes(parent), 1).encrypt(data)


def test_each_set_bit_is_one_derivation_from_the_key_without_the_lowest_bit():
    # 6.1: the key of a counter derives from the key of the counter with its lowest set
    # bit cleared, the derivation data carrying the whole counter; 0 is the initial key.
    _, ik, ikid = _provisioned()
    for counter in (1, 0x80000000, 0x0000FFFF, 0xFFFF0000, 0x5555AAAA, 0x12345678):
        lower = counter & (counter - 1)
        parent = dukpt.transaction_key(ik, ikid, lower) if lower else ik
        expected = _one_step(parent, ikid, dukpt.KEY_USAGE_KEY_DERIVATION, counter)
        assert bytes(dukpt.transaction_key(ik, ikid, counter)) == expected, hex(counter)


def test_counter_zero_is_refused():
    _, ik, ikid = _provisioned()
    err = raises(DUKPTError, dukpt.transaction_key, ik, ikid, 0)
    assert "counter" in str(err)
    raises(DUKPTError, dukpt.make_ksn, ikid, 0)
    raises(DUKPTError, dukpt.split_ksn, ikid + bytes(4))


def test_counter_with_more_than_16_one_bits_is_refused():
    _, ik, ikid = _provisioned()
    for counter in (0x0001FFFF, 0xFFFF8000, 0xFFFFFFFF, 0x5555AAAB):
        assert dukpt.one_bits(counter) > 16
        err = raises(DUKPTError, dukpt.transaction_key, ik, ikid, counter)
        assert "counter bits" in str(err)
        raises(DUKPTError, dukpt.working_key, bytes(16), ikid, counter,
               dukpt.KEY_USAGE_PIN_ENCRYPTION)


def test_counter_outside_32_bits_is_refused():
    _, ik, ikid = _provisioned()
    for counter in (-1, 0x100000000, 0x100000001):
        raises(DUKPTError, dukpt.transaction_key, ik, ikid, counter)


def test_counters_with_16_one_bits_are_accepted():
    _, ik, ikid = _provisioned()
    for counter in (0x0000FFFF, 0xFFFF0000, 0x5555AAAA, dukpt.LAST_COUNTER):
        assert len(dukpt.transaction_key(ik, ikid, counter)) == 16


def test_next_counter_counts_up_from_provisioning():
    counter = 0
    for expected in range(1, 40):
        counter = dukpt.next_counter(counter)
        assert counter == expected


def test_next_counter_skips_counters_with_too_many_one_bits():
    cases = (
        (0x0000FFFE, 0x0000FFFF),   # 16 one-bits is still allowed
        (0x0000FFFF, 0x00010000),
        (0x0001FFFE, 0x00020000),   # 0x1FFFF has 17
        (0x7FFF8000, 0x80000000),   # every value between has 17 or more
        (0xFFFE8000, 0xFFFF0000),
        (0xFFFE0000, 0xFFFE0001),
    )
    for before, after in cases:
        assert dukpt.next_counter(before) == after, hex(before)


def test_next_counter_result_is_always_usable():
    counter = 0x00FFFF00
    for _ in range(200):
        counter = dukpt.next_counter(counter)
        dukpt.check_counter(counter)


def test_exhaustion_after_the_last_counter():
    assert dukpt.next_counter(0xFFFE8000) == dukpt.LAST_COUNTER
    for counter in (dukpt.LAST_COUNTER, dukpt.LAST_COUNTER + 1, 0xFFFFFFFF):
        err = raises(DUKPTError, dukpt.next_counter, counter)
        assert "exhausted" in str(err)


def test_key_and_id_sizes_are_checked():
    _, ik, ikid = _provisioned()
    err = raises(DUKPTError, dukpt.transaction_key, ik[:15], ikid, 1)
    assert "key size" in str(err)
    err = raises(DUKPTError, dukpt.transaction_key, ik, ikid[:7], 1)
    assert "key ID size" in str(err)
    raises(DUKPTError, dukpt.make_ksn, ikid + b"\x00", 1)
    raises(DUKPTError, dukpt.split_ksn, bytes(11))
    raises(DUKPTError, dukpt.working_key, bytes(15), ikid, 1, dukpt.KEY_USAGE_PIN_ENCRYPTION)


def test_wipe_zeroes_a_key():
    _, ik, ikid = _provisioned()
    tk = dukpt.transaction_key(ik, ikid, 1)
    wipe(tk)
    assert tk == bytearray(16)
