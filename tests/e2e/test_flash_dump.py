"""A thief with the board's flash (GUIDE, Security): the real firmware under MicroPython
makes a few transactions (a balance inquiry, purchases, one reversed), then every file
on its flash is read, and every 16-byte value in it (each run of 16 bytes, each run of 32
hex digits) is compared with the keys the issuer derives from the BDK for the KSNs the
board used: its initial key, every intermediate key on the way to each transaction key,
and each transaction's PIN and MAC generation keys. None may be there: nothing on the
flash derives a key of a transaction already made; nor is any working key stored, not
even the MAC verification key of a reversal waiting for its acknowledgement. And a reset
after the registers are saved, before the request is sent, never has a KSN used
again."""
import re

import cbor2

from posbridge.board.peripherals import card_record
from posbridge.board.provision import TEST_BDK, TEST_INITIAL_KEY_ID, provision_test_terminal
from posbridge.issuer.dukpt import (KeyUsage, derive_initial_key, derive_transaction_key,
                                    derive_working_key, parse_ksn)
from posbridge.link import protocol as p

from .test_power_cut import Board, charged, frames_of, start_purchase, wait_for
from .test_purchase import LI_WEI, board_journal, dismiss, purchase, sent
from .wiretap import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD, DROP

REQUESTS = (p.BALANCE_REQUEST, p.PURCHASE_REQUEST, p.REVERSAL_REQUEST)


def stored_values(state_dir):
    """{16-byte value: the files holding it} of every file on the flash."""
    values = {}
    for f in sorted(state_dir.iterdir()):
        data = f.read_bytes()
        found = {data[i:i + 16] for i in range(len(data) - 15)}
        found |= {bytes.fromhex(h.decode()) for h in re.findall(rb"(?=([0-9A-Fa-f]{32}))", data)}
        for v in found:
            values.setdefault(v, []).append(f.name)
    return values


def keys_of(ksns):
    """{key: what it is} for the KSNs: the initial key, the intermediate keys on the way
    to each transaction key (the transaction key included), its PIN and MAC generation
    keys, all derived from the BDK as the issuer does."""
    keys = {}
    for ksn in ksns:
        key_id, counter = parse_ksn(ksn)
        keys[derive_initial_key(TEST_BDK, key_id)] = "the initial key"
        walked = 0
        for bit in range(31, -1, -1):
            if counter >> bit & 1:
                walked |= 1 << bit
                keys[derive_transaction_key(TEST_BDK, key_id + walked.to_bytes(4, "big"))] = \
                    f"the key of counter {walked:08X}, on the way to {counter:08X}"
        keys[derive_working_key(TEST_BDK, ksn, KeyUsage.PIN_ENCRYPTION)] = \
            f"the PIN key of {counter:08X}"
        keys[derive_working_key(TEST_BDK, ksn, KeyUsage.MAC_GENERATION)] = \
            f"the MAC generation key of {counter:08X}"
    return keys


def used_ksns(messages):
    return [cbor2.loads(body)[6] for _, t, body in messages if t in REQUESTS]


def assert_nothing_derives_a_used_key(state_dir, ksns):
    assert ksns
    stored = stored_values(state_dir)
    leaks = {what: stored[k] for k, what in keys_of(ksns).items() if k in stored}
    assert not leaks, leaks
    assert "initial_key" not in (state_dir / "terminal.json").read_text()


def assert_no_working_key(state_dir, ksns):
    """No MAC verification or data key of any KSN used: a reversal waiting for its
    acknowledgement is built afresh at each try, its key in RAM only."""
    stored = stored_values(state_dir)
    for ksn in ksns:
        for usage in (KeyUsage.MAC_VERIFICATION, KeyUsage.DATA_ENCRYPTION):
            assert derive_working_key(TEST_BDK, ksn, usage) not in stored


def _drop(*mtypes):
    return lambda d, payload: DROP if (
        d == BRIDGE_TO_BOARD and payload[1] in mtypes) else None


def test_a_flash_dump_gives_no_key_of_a_transaction_made(bank, issuer):
    flash = bank.emulator.state_dir
    em = bank.emulator
    start = len(em.screens)
    em.card_reader_sends(card_record(LI_WEI, "3012"))
    em.answer_prompts([("1 Balance", "1"), ("Enter PIN", "1234E")], after=start)
    em.wait_for_screen("BALANCE CNY", timeout=30, after=start)
    dismiss(bank)
    assert purchase(bank, LI_WEI, "1250", result="APPROVED").lines[0] == "APPROVED"
    dismiss(bank)
    assert_nothing_derives_a_used_key(flash, used_ksns(bank.messages))

    # a purchase whose answer is lost: reversed, and the reversal left unacknowledged
    bank.tap.tamper = _drop(p.PURCHASE_RESPONSE, p.REVERSAL_RESPONSE)
    purchase(bank, LI_WEI, "300", result="No charge")
    bank.emulator.pin_pad_sends(b"E")
    wait_for(lambda: sent(bank, p.REVERSAL_REQUEST), timeout=20)
    [entry] = board_journal(bank)
    assert len(entry) == 6                  # no reversal request, no key kept with it
    ksns = used_ksns(bank.messages)
    assert len(set(ksns)) == len(ksns) == 4
    assert_nothing_derives_a_used_key(flash, ksns)
    assert_no_working_key(flash, ksns)      # not even the waiting reversal's

    bank.tap.tamper = None           # the answers come through again
    em.wait_for_screen("Acknowledged", timeout=90, after=len(em.screens) - 1)
    wait_for(lambda: board_journal(bank) == [], timeout=10)
    em.wait_for_screen("Insert card", timeout=10, after=len(em.screens) - 1)
    assert purchase(bank, LI_WEI, "450", result="APPROVED").lines[0] == "APPROVED"
    dismiss(bank)
    ksns = used_ksns(bank.messages)
    assert len(set(ksns)) == len(ksns) >= 5
    assert_nothing_derives_a_used_key(flash, ksns)
    assert_no_working_key(flash, ksns)
    # the registers' next counter is the one after the last used
    keys = (flash / "keys.bin").read_bytes()
    assert int.from_bytes(keys[9:13], "big") == parse_ksn(ksns[-1])[1] + 1


def test_a_reset_after_the_registers_are_saved_never_reuses_a_ksn(issuer, tmp_path):
    board = Board(issuer, tmp_path / "flash")
    board.start()
    try:
        s = board.session
        # the request never gets past the wire: the registers were saved, then the power
        # went before it was sent
        s.tap.tamper = lambda d, payload: DROP if (
            d == BOARD_TO_BRIDGE and payload[1] == p.PURCHASE_REQUEST) else None
        start_purchase(s)
        wait_for(lambda: frames_of(s.tap, BOARD_TO_BRIDGE, p.PURCHASE_REQUEST))
        lost = cbor2.loads(frames_of(s.tap, BOARD_TO_BRIDGE, p.PURCHASE_REQUEST)[0][1][4:])[6]
        board.cut_power()
        board.start()
        board.settle()                  # its reversal goes under a KSN of its own
        ksns = [lost] + used_ksns(board.session.messages)
        purchase(board.session, LI_WEI, "1250", result="APPROVED")
        ksns += used_ksns(board.session.messages)[len(ksns) - 1:]
        counters = [parse_ksn(k)[1] for k in ksns]
        assert counters == sorted(set(counters)), counters        # each once, going up
        assert len(counters) == 3 and charged(issuer) == 1250
        assert_nothing_derives_a_used_key(board.state_dir, ksns)
    finally:
        board.close()


def test_the_flash_holds_no_initial_key_from_the_start(tmp_path):
    provision_test_terminal(tmp_path)
    assert derive_initial_key(TEST_BDK, TEST_INITIAL_KEY_ID) not in stored_values(tmp_path)
