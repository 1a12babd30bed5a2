"""Issuer side of DUKPT / AES-CMAC / format 4 PIN blocks: the standard's vectors, a cross-
check of PIN blocks against the psec package, and the board-side modules (firmware/, run
here under CPython with the tests/firmware cryptolib stand-in) accepted by the issuer."""
import os

import psec.pinblock
import pytest

from posbridge.issuer import dukpt
from posbridge.issuer.dukpt import DukptError, KeyUsage, MacError, PinBlockError

import cmac as board_cmac  # the board's modules, from firmware/
import dukpt as board_dukpt
import key_loading
import pinblock as board_pinblock
import reference_vectors
from posbridge.board.provision import register_record

# X9.24-3-2017 test vector supplement, AES-128 BDK set, and the ISO 9564-1:2017 format 4
# example worked there (reference_vectors.py says which part is which)
REF = reference_vectors.load()
BDK = bytes.fromhex(REF["bdk"])
IKID = bytes.fromhex(REF["initial_key_id"])
IK = bytes.fromhex(REF["initial_key"])
EXAMPLE = REF["iso9564_format4_example"]
TRANSACTIONS = REF["transactions"]
WORKING_KEYS = [("pin_encryption_key", KeyUsage.PIN_ENCRYPTION),
                ("mac_generation_key", KeyUsage.MAC_GENERATION),
                ("data_encryption_key", KeyUsage.DATA_ENCRYPTION)]

# counters for the board/issuer agreement: the reference ones, single high bits, 16 set
# bits (the most the standard allows) in several patterns, and the last counter
COUNTERS = [1, 2, 3, 0xFF, 0x100, 0xFFFF, 0x10000, 0x0001FFFE, 0x00FFFF00, 0x5555AAAA,
            0xAAAA5555, 0x7FFF8000, 0x80000000, 0x8000FFFE, 0xFFFE8000, 0xFFFF0000]


def ksn_of(counter):
    return IKID + counter.to_bytes(4, "big")


def test_initial_key_from_bdk():
    assert dukpt.derive_initial_key(BDK, IKID) == IK


@pytest.mark.parametrize("tx", TRANSACTIONS, ids=lambda tx: tx["ksn"])
def test_transaction_key(tx):
    assert dukpt.derive_transaction_key(BDK, bytes.fromhex(tx["ksn"])) == \
        bytes.fromhex(tx["transaction_key"])


@pytest.mark.parametrize("name,usage", WORKING_KEYS, ids=[n for n, _ in WORKING_KEYS])
@pytest.mark.parametrize("tx", TRANSACTIONS, ids=lambda tx: tx["ksn"])
def test_working_key(tx, name, usage):
    assert dukpt.derive_working_key(BDK, bytes.fromhex(tx["ksn"]), usage) == \
        bytes.fromhex(tx[name])


@pytest.mark.parametrize("name,usage", WORKING_KEYS, ids=[n for n, _ in WORKING_KEYS])
@pytest.mark.parametrize("tx", TRANSACTIONS, ids=lambda tx: tx["ksn"])
def test_terminal_side_working_key_from_the_initial_key(tx, name, usage):
    ksn = bytes.fromhex(tx["ksn"])
    assert dukpt.transaction_key_from_initial(IK, ksn) == bytes.fromhex(tx["transaction_key"])
    assert dukpt.working_key_from_initial(IK, ksn, usage) == bytes.fromhex(tx[name])


@pytest.mark.parametrize("counter", COUNTERS)
def test_terminal_side_keys_equal_the_issuers(counter):
    for usage in (KeyUsage.MAC_GENERATION, KeyUsage.MAC_VERIFICATION, KeyUsage.PIN_ENCRYPTION):
        assert dukpt.working_key_from_initial(IK, ksn_of(counter), usage) == \
            dukpt.derive_working_key(BDK, ksn_of(counter), usage)


def test_iso9564_format4_example_deciphers():
    block = bytes.fromhex(EXAMPLE["encrypted_pin_block"])
    ksn = bytes.fromhex(EXAMPLE["ksn"])
    assert dukpt.decrypt_pin_block(BDK, ksn, block, EXAMPLE["pan"]) == EXAMPLE["pin"]
    assert dukpt.pan_field(EXAMPLE["pan"]) == bytes.fromhex(EXAMPLE["plain_pan_field"])


def test_wrong_pan_or_ksn_is_refused_without_quoting_the_pin():
    block = bytes.fromhex(EXAMPLE["encrypted_pin_block"])
    ksn = bytes.fromhex(EXAMPLE["ksn"])
    for k, pan in ((ksn, "4111111111111112"), (ksn_of(2), EXAMPLE["pan"])):
        with pytest.raises(PinBlockError) as err:
            dukpt.decrypt_pin_block(BDK, k, block, pan)
        assert EXAMPLE["pin"] not in str(err.value)


@pytest.mark.parametrize("counter", [0, 0x0001FFFF, 0xFFFFFFFF, 0xFFFF8000])
def test_ksn_counter_refused(counter):
    with pytest.raises(DukptError, match="transaction counter"):
        dukpt.derive_transaction_key(BDK, ksn_of(counter))


def test_ksn_and_key_sizes_checked():
    with pytest.raises(DukptError, match="KSN"):
        dukpt.derive_transaction_key(BDK, IKID + b"\x00\x01")
    with pytest.raises(DukptError, match="BDK"):
        dukpt.derive_initial_key(BDK[:8], IKID)


# -- psec cross-check (an independent format 4 implementation) ---------------------------

PINS_PANS = [("1234", "4111111111111111"), ("0000", "123456789012"),
             ("98765", "5413330089020011"), ("123456789012", "1234567890123456789"),
             ("4321", "12345"), ("777777", "6011000990139424")]


@pytest.mark.parametrize("pin,pan", PINS_PANS)
def test_psec_blocks_decipher_here(pin, pan):
    key = bytes.fromhex(TRANSACTIONS[1]["pin_encryption_key"])
    block = psec.pinblock.encipher_pinblock_iso_4(key, pin, pan)
    assert dukpt.decipher_pin_block(key, block, pan) == pin


@pytest.mark.parametrize("pin,pan", PINS_PANS)
def test_board_blocks_decipher_in_psec(pin, pan):
    key = bytes.fromhex(TRANSACTIONS[1]["pin_encryption_key"])
    block = board_pinblock.make_block(key, bytearray(pin.encode()), pan)
    assert psec.pinblock.decipher_pinblock_iso_4(key, block, pan) == pin


@pytest.mark.parametrize("pan", [pan for _, pan in PINS_PANS])
def test_pan_fields_agree_with_psec(pan):
    expected = psec.pinblock.encode_pan_field_iso_4(pan)
    assert dukpt.pan_field(pan) == expected
    assert bytes(board_pinblock.pan_field(pan)) == expected


def test_reference_example_matches_psec_fields():
    assert psec.pinblock.encode_pan_field_iso_4(EXAMPLE["pan"]) == \
        bytes.fromhex(EXAMPLE["plain_pan_field"])
    assert psec.pinblock.decipher_pinblock_iso_4(
        bytes.fromhex(TRANSACTIONS[0]["pin_encryption_key"]),
        bytes.fromhex(EXAMPLE["encrypted_pin_block"]), EXAMPLE["pan"]) == EXAMPLE["pin"]


# -- board side accepted by the issuer -----------------------------------------------------
# (its keys come from its registers, as provisioning fills them for a counter)

def board_take(counter):
    """The board's transaction key and KSN for `counter`, from its registers as
    provisioning writes them for that counter (board/provision.py)."""
    record = bytearray(register_record(IK, IKID, counter))
    return board_dukpt.take(record)


@pytest.mark.parametrize("counter", COUNTERS, ids=lambda c: f"{c:08X}")
def test_board_keys_equal_the_issuers(counter):
    tk, ksn = board_take(counter)
    assert ksn == ksn_of(counter)
    assert bytes(tk) == dukpt.derive_transaction_key(BDK, ksn)
    for usage in KeyUsage:
        if usage in (KeyUsage.KEY_DERIVATION, KeyUsage.INITIAL_KEY):
            continue
        assert bytes(board_dukpt.working_keys(tk, ksn, (int(usage),))[0]) == \
            dukpt.derive_working_key(BDK, ksn, usage), usage.name


@pytest.mark.parametrize("counter", COUNTERS, ids=lambda c: f"{c:08X}")
def test_board_pin_block_and_mac_accepted_by_issuer(counter):
    tk, ksn = board_take(counter)
    pin_key, mac_key, response_key = board_dukpt.working_keys(
        tk, ksn, (board_dukpt.KEY_USAGE_PIN_ENCRYPTION, board_dukpt.KEY_USAGE_MAC_GENERATION,
                  board_dukpt.KEY_USAGE_MAC_VERIFICATION))
    pin = "%04d" % (counter % 10000) + "5" * (counter % 5)
    pan = "4111111111111111"
    block = board_pinblock.make_block(pin_key, bytearray(pin.encode()), pan)
    assert dukpt.decrypt_pin_block(BDK, ksn, block, pan) == pin

    request = b"\xa4\x01\x02\x02\x19\x03\xe8" + ksn + bytes(range(counter % 50))
    for size in (16, 8):
        mac = board_cmac.aes_cmac(mac_key, request, size)
        dukpt.verify_request_mac(BDK, ksn, request, mac)
        with pytest.raises(MacError):
            dukpt.verify_request_mac(BDK, ksn, request + b"\x00", mac)
    other_tk, other_ksn = board_take(1 if counter == 0xFFFF0000 else 0xFFFF0000)
    other_key = board_dukpt.working_keys(other_tk, other_ksn,
                                         (board_dukpt.KEY_USAGE_MAC_GENERATION,))[0]
    with pytest.raises(MacError):  # a MAC made under another counter's key
        dukpt.verify_request_mac(BDK, ksn, request, board_cmac.aes_cmac(other_key, request))

    response = b"\xa3\x01\x00\x02\x1a\x00\x01\x86\xa0"
    assert board_cmac.verify(response_key, response, dukpt.response_mac(BDK, ksn, response))
    assert not board_cmac.verify(mac_key, response, dukpt.response_mac(BDK, ksn, response))


def test_provisioning_fills_the_registers_as_the_firmware_tests_do():
    # two writings of the same record (board/provision.py, tests/firmware/key_loading.py)
    for counter in COUNTERS + [0]:
        assert register_record(IK, IKID, counter, 7) == \
            bytes(key_loading.record_at(IK, IKID, counter, 7)), f"{counter:08X}"


def test_board_cmac_equals_cryptography_cmac():
    key = os.urandom(16)
    message = os.urandom(200)
    for length in range(0, 200, 7):
        assert board_cmac.aes_cmac(key, message[:length]) == \
            dukpt.aes_cmac(key, message[:length])


def test_truncated_request_mac_below_64_bits_refused():
    ksn = ksn_of(1)
    with pytest.raises(MacError, match="8 to 16"):
        dukpt.verify_request_mac(BDK, ksn, b"x", bytes(4))


# -- the board's counters against a brute-force search, its keys against the BDK's -------

def brute_force_next(counter):
    counter += 1
    while bin(counter).count("1") > 16:
        counter += 1
    return counter


@pytest.mark.parametrize("start", [1, 0xFFFE, 0x0001FFFE, 0x00FFFF00, 0x7FFF0000, 0x7FFF8000,
                                   0xFFFC0000, 0xFFFE8000, 0xFFFF0000])
def test_every_counter_the_board_uses_is_the_next_allowed_one_with_the_issuers_keys(start):
    record = bytearray(register_record(IK, IKID, start))
    counter = start
    for _ in range(64):
        tk, ksn = board_dukpt.take(record)
        assert ksn == ksn_of(counter)
        assert bytes(tk) == dukpt.derive_transaction_key(BDK, ksn), f"{counter:08X}"
        nxt = int.from_bytes(record[9:13], "big")
        if counter == 0xFFFF0000:
            assert nxt == 0      # exhausted
            break
        assert nxt == brute_force_next(counter), f"{counter:08X}"
        counter = nxt
