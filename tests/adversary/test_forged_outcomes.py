"""A man in the middle on the serial link, between the board and the bridge, who lets a
purchase reach the issuer (approved: the card is charged) and then tries to make the
board believe it did not happen, or holds a request to deliver it later. Nothing
unauthenticated decides money (GUIDE.md, Security): whatever the board shows must agree
with the issuer's ledger once the board's reversal is in, and the issuer's journal or
log must show the attack.

The real firmware under MicroPython (64 KiB heap), the bridge and the issuer simulator,
with the wire tap (tests/e2e/wiretap.py) rewriting or dropping frames; CRCs are
recomputed, so only the MACs can tell."""
import logging

import cbor2
import pytest

from posbridge.issuer import IssuerError
from posbridge.link import cbor_profile
from posbridge.link import protocol as p
from tests.e2e.test_purchase import (LI_WEI, LI_WEI_BALANCE, available, board_journal,
                                     dismiss, purchase, sent)
from tests.e2e.wiretap import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD, DROP

REVERSAL_ERROR, REVERSAL_BAD_ANSWER = 4, 2          # reversal-reason (docs/protocol.cddl)


def _frame(payload, mtype, body):
    """`payload`'s link header (version, seq, flags) with another type and body: the
    board ACKs it as the frame it replaces."""
    return bytes([payload[0], mtype]) + bytes(payload[2:4]) + body


def _error_body(code, trace):
    return p.encode_body(p.build("error", code=code, text="issuer unavailable",
                                 about_type=p.PURCHASE_REQUEST, trace=trace))


def _replace_the_answer_by_an_error(code):
    """The issuer's MAC'd approval, on its way to the board, becomes an ERROR naming the
    purchase's trace number: what a board that trusts ERRORs takes for "never
    processed"."""
    def tamper(direction, payload):
        if direction != BRIDGE_TO_BOARD or payload[1] != p.PURCHASE_RESPONSE:
            return None
        trace = cbor2.loads(payload[4:])[2]
        return _frame(payload, p.ERROR, _error_body(code, trace))
    return tamper


def _reversal_acknowledged(bank, after):
    """Dismiss the "No charge" screen; the screen that acknowledges the reversal."""
    dismiss(bank, then="Sending reversal")
    return bank.emulator.wait_for_screen("Acknowledged", timeout=25, after=after)


def _ends_with_nothing_charged(bank, issuer):
    """The purchase and its reversal at the issuer, the account as before, the board's
    journal empty: what the board's "No charge" said."""
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    assert sum(e["amount"] for e in issuer.ledger.ledger_entries()) == 0
    assert board_journal(bank) == []
    assert all("APPROVED" not in s.text for s in bank.emulator.screens)


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 6])
def test_a_forged_error_after_the_charge_is_reversed(bank, issuer, code, caplog):
    caplog.set_level(logging.WARNING)
    bank.tap.tamper = _replace_the_answer_by_an_error(code)
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    [(_, _, forged)] = bank.tap.tampered
    assert forged[1] == p.ERROR
    # the issuer approved and charged it; the board never saw that
    [row] = issuer.ledger.journal()
    assert (row["response_code"], row["posted"]) == ("00", -1250)
    assert screen.lines[0] == "NOT COMPLETED" and "CNY 12.50" in screen.text
    assert "Reversal will" in screen.text
    [entry] = board_journal(bank)
    assert (entry[0], entry[5]) == (1, REVERSAL_ERROR)     # to reverse: an ERROR came
    done = _reversal_acknowledged(bank, bank.emulator.screens.index(screen))
    assert "Credited back" in done.text
    purchase_row, reversal_row = issuer.ledger.journal()
    assert (reversal_row["reversal_reason"], reversal_row["reversal_outcome"]) == (
        REVERSAL_ERROR, 1)
    assert purchase_row["reversed_by"] == reversal_row["id"]
    _ends_with_nothing_charged(bank, issuer)
    # the issuer knows its approval never reached the terminal as it was sent
    assert any("was approved, yet its terminal reverses it (an ERROR instead of an answer)"
               in r.getMessage() for r in caplog.records)


def test_the_issuers_refusal_of_an_altered_copy_is_not_taken_for_the_answer(
        bank, issuer, caplog):
    """The real request goes on and is charged. A copy with another amount (its MAC left
    as it was) goes to the issuer too, for a MAC'd refusal under the same terminal id,
    trace number and KSN, which then replaces the approval on its way to the board."""
    caplog.set_level(logging.WARNING)
    forged = {}

    def tamper(direction, payload):
        if (direction == BOARD_TO_BRIDGE and payload[1] == p.PURCHASE_REQUEST
                and not forged):
            fields = cbor2.loads(payload[4:])
            fields[8] = 1
            copy = cbor_profile.encode(fields)
            try:
                forged["answer"] = (p.PURCHASE_RESPONSE,
                                    issuer.handle(p.PURCHASE_REQUEST, copy))
            except IssuerError:         # no MAC'd refusal to be had: the bridge's ERROR
                forged["answer"] = (p.ERROR, _error_body(p.ERR_SECURITY, fields[2]))
            return None
        if (direction == BRIDGE_TO_BOARD and payload[1] == p.PURCHASE_RESPONSE
                and "answer" in forged):
            return _frame(payload, *forged.pop("answer"))
        return None

    bank.tap.tamper = tamper
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    [row] = issuer.ledger.journal()              # the real one, charged; the copy is not
    assert (row["response_code"], row["posted"]) == ("00", -1250)
    [(_, _, refusal)] = [t for t in bank.tap.tampered if t[0] == BRIDGE_TO_BOARD]
    assert cbor2.loads(refusal[4:])[3] == "63"          # MAC'd, of the same trace and KSN
    assert all("DECLINED" not in s.text for s in bank.emulator.screens)
    [entry] = board_journal(bank)
    assert (entry[0], entry[5]) == (1, REVERSAL_BAD_ANSWER)
    done = _reversal_acknowledged(bank, bank.emulator.screens.index(screen))
    assert "Credited back" in done.text
    _ends_with_nothing_charged(bank, issuer)
    assert any("request MAC does not match" in r.getMessage() for r in caplog.records)
    assert any("was approved, yet its terminal reverses it (answer failed verification)"
               in r.getMessage() for r in caplog.records)


def test_a_request_held_and_delivered_30_days_later_is_refused(bank, issuer,
                                                               issuer_clock, caplog):
    """The purchase request never reaches the bridge (the board reverses it: no answer);
    the man in the middle keeps it, and the board's reversal, and hands the request to
    the issuer a month later."""
    caplog.set_level(logging.WARNING)
    held, blocked = [], [p.REVERSAL_REQUEST]

    def tamper(direction, payload):
        if direction != BOARD_TO_BRIDGE:
            return None
        if payload[1] == p.PURCHASE_REQUEST:
            held.append(bytes(payload[4:]))
            return DROP
        return DROP if payload[1] in blocked else None

    bank.tap.tamper = tamper
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    assert issuer.ledger.journal() == []
    issuer_clock.offset = 30 * 24 * 3600
    response = issuer.handle(p.PURCHASE_REQUEST, held[0])
    fields = p.parse("purchase-response", response)
    assert fields["response_code"] == "68"               # MAC'd: too old
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    [row] = issuer.ledger.journal()
    assert (row["response_code"], row["posted"]) == ("68", 0)
    assert any("behind the issuer's clock: 68" in r.getMessage() for r in caplog.records)
    # the board's reversal, let through at last, finds nothing charged, as it said
    blocked.clear()
    done = _reversal_acknowledged(bank, bank.emulator.screens.index(screen))
    assert "Nothing charged" in done.text
    _ends_with_nothing_charged(bank, issuer)


@pytest.mark.parametrize("skewed_bank", [-24 * 3600, 600], indirect=True,
                         ids=["a day slow", "ten minutes fast"])
def test_a_board_clock_set_wrong_gets_purchases_refused_never_charged(skewed_bank, issuer):
    """The bridge sets the board's clock, and nothing authenticates it: a wrong one may
    have purchases refused, but never charged."""
    bank = skewed_bank
    screen = purchase(bank, LI_WEI, "1250")
    assert screen.lines[0] == "DECLINED 68" and "clock wrong" in screen.text
    [row] = issuer.ledger.journal()
    assert (row["response_code"], row["posted"]) == ("68", 0)
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    assert board_journal(bank) == [] and sent(bank, p.REVERSAL_REQUEST) == []
