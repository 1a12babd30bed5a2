"""The issuer's answers to purchase requests built as the board builds them
(terminal.py): every response code, the debit with its ledger entry and journal row in
one transaction, exactly once for a repeated request, 94 for a reused identity, MACs,
malformed requests, failures, and every request and response checked against
docs/protocol.cddl."""
import sqlite3

import pytest

from posbridge.link import cbor_profile
from posbridge.issuer import Faults, IssuerRequestError, IssuerUnavailable
from posbridge.issuer import Ledger, cards, codes, outbox
from posbridge.issuer.cards import MAX_PIN_TRIES
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST
from tests.schema import schema_for

from .request_builder import (MERCHANT_ID, MERCHANT_NAME, SecurityError, provisioned_terminal,
                              rebound, refused_unauthenticated, resign)
from .request_builder import TerminalRequestBuilder as Terminal
from .test_balance_inquiry import LI_WEI, LIU_YANG, UNKNOWN, ZHANG_MIN, ZHAO_LEI

WANG_FANG = "4761730000000037"    # app push, account limit 2,000.00, threshold 100.00
CHEN_JIE = "4761730000000045"     # 300.00, no phone
SUN_LI = "6225880000000076"       # purchase alerts only

BALANCES = {LI_WEI: 1234567, ZHANG_MIN: 88000, WANG_FANG: 500000, CHEN_JIE: 30000}


def cddl_check(rule, body):
    schema_for(rule).validate_cbor(bytes(body))


def buy(issuer, terminal, pan, amount, **kw):
    """The board's view of the answer to a new purchase (CDDL-checked both ways)."""
    body, pending = terminal.purchase(pan, amount, **kw)
    cddl_check("purchase-request", body)
    response = issuer.handle(PURCHASE_REQUEST, body)
    cddl_check("purchase-response", response)
    return terminal.check(response, pending)


def available(issuer, pan):
    return issuer.ledger.card_by_pan(pan).available


def entries(issuer):
    return [(e["kind"], e["trace_number"], e["amount"]) for e in issuer.ledger.ledger_entries()]


# ---- response codes -------------------------------------------------------------------

CASES = [
    # pan, amount, pin, card expiry sent, currency, expected code
    (LI_WEI, 1250, "1234", "3012", 156, codes.APPROVED),
    (LI_WEI, 500000, "1234", "3012", 156, codes.APPROVED),       # the card limit itself
    (ZHANG_MIN, 88000, "1234", "3012", 156, codes.APPROVED),     # the whole balance
    (ZHANG_MIN, 88001, "1234", "3012", 156, codes.INSUFFICIENT_FUNDS),
    (CHEN_JIE, 40000, "1234", "3012", 156, codes.INSUFFICIENT_FUNDS),
    (LI_WEI, 500001, "1234", "3012", 156, codes.EXCEEDS_LIMIT),  # card limit 5,000.00
    (WANG_FANG, 200001, "1234", "3012", 156, codes.EXCEEDS_LIMIT),  # account limit 2,000.00
    (LI_WEI, 1250, "1234", "3012", 840, codes.INVALID_AMOUNT),   # not the account's currency
    (LI_WEI, 1250, "4321", "3012", 156, codes.INCORRECT_PIN),
    (UNKNOWN, 1250, "1234", "3012", 156, codes.INVALID_CARD),
    (ZHAO_LEI, 1250, "1234", "3012", 156, codes.RESTRICTED_CARD),
    (LIU_YANG, 1250, "1234", "2101", 156, codes.EXPIRED_CARD),
    (LI_WEI, 1250, "1234", "2610", 156, codes.EXPIRED_CARD),     # expired on the card
]


@pytest.mark.parametrize("pan,amount,pin,expiry,currency,code", CASES)
def test_response_code(issuer, terminal, pan, amount, pin, expiry, currency, code):
    before = issuer.ledger.card_by_pan(pan)
    fields = buy(issuer, terminal, pan, amount, pin=pin, expiry=expiry, currency=currency)
    assert fields[3] == code
    assert (fields[1], fields[2]) == (terminal.terminal_id, terminal.trace)
    approved = code == codes.APPROVED
    for key in (4, 5, 6, 7):
        assert (key in fields) == approved
    assert (10 in fields) == (code == codes.INCORRECT_PIN)
    after = issuer.ledger.card_by_pan(pan)
    if before is not None:
        charged = amount if approved else 0
        assert (after.available, after.ledger) == (before.available - charged,
                                                   before.ledger - charged)
    assert entries(issuer) == ([("purchase", terminal.trace, -amount)] if approved else [])
    [row] = issuer.ledger.journal()
    assert (row["kind"], row["amount"], row["currency"], row["response_code"],
            row["merchant_id"], row["merchant_name"]) == \
        ("purchase", amount, currency, code, MERCHANT_ID, MERCHANT_NAME)


def test_approval_carries_the_balances_after_the_purchase(issuer, terminal):
    fields = buy(issuer, terminal, LI_WEI, 1250)
    assert fields[4].isdigit() and len(fields[4]) == 6
    assert (fields[5], fields[6], fields[7]) == (1234567 - 1250, 1234567 - 1250, 156)
    [entry] = issuer.ledger.ledger_entries()
    [row] = issuer.ledger.journal()
    assert (entry["transaction_id"], entry["amount"], entry["available_after"],
            entry["ledger_after"]) == (row["id"], -1250, 1233317, 1233317)
    assert (row["approval_code"], row["posted"], row["card"]) == \
        (fields[4], -1250, "476173******0011")
    assert bytes.fromhex(row["ksn"]) == fields[9]


def test_purchases_add_up(issuer, terminal):
    amounts = [100, 2599, 33333, 1]
    for amount in amounts:
        assert buy(issuer, terminal, ZHANG_MIN, amount)[3] == codes.APPROVED
    assert available(issuer, ZHANG_MIN) == 88000 - sum(amounts)
    after = [e["available_after"] for e in issuer.ledger.ledger_entries()]
    assert after == [88000 - sum(amounts[:i + 1]) for i in range(len(amounts))]
    # then one more than what is left
    assert buy(issuer, terminal, ZHANG_MIN, 88000 - sum(amounts) + 1)[3] == \
        codes.INSUFFICIENT_FUNDS


def test_credit_limit_lets_the_balance_go_below_zero(issuer, terminal):
    cards.add(issuer.ledger, pan="4111111111111111", pin="1234", expiry="3012",
              available=10000, currency=156, name="Overdraft",
              credit_limit=5000)
    assert buy(issuer, terminal, "4111111111111111", 15001)[3] == codes.INSUFFICIENT_FUNDS
    fields = buy(issuer, terminal, "4111111111111111", 15000)
    assert (fields[3], fields[5]) == (codes.APPROVED, -5000)


def test_the_lower_of_card_and_account_limit_counts(issuer, terminal):
    cards.add(issuer.ledger, pan="4111111111111111", pin="1234", expiry="3012",
              available=900000, currency=156, name="Limits",
              purchase_limit=30000, account_purchase_limit=20000)
    assert buy(issuer, terminal, "4111111111111111", 20001)[3] == codes.EXCEEDS_LIMIT
    assert buy(issuer, terminal, "4111111111111111", 20000)[3] == codes.APPROVED


def test_amount_rules_come_after_the_pin(issuer, terminal):
    # a wrong PIN costs a try whatever the amount; the funds are never looked at first
    fields = buy(issuer, terminal, CHEN_JIE, 99999999, pin="0000")
    assert (fields[3], fields[10]) == (codes.INCORRECT_PIN, 2)


def test_three_wrong_pins_then_75_even_with_the_right_one(issuer, terminal):
    answers = [buy(issuer, terminal, LI_WEI, 1250, pin="9999") for _ in range(MAX_PIN_TRIES)]
    assert [(a[3], a[10]) for a in answers] == [("55", 2), ("55", 1), ("75", 0)]
    locked = buy(issuer, terminal, LI_WEI, 1250)
    assert (locked[3], locked[10], locked[8]) == ("75", 0, {1: codes.NOTHING_TO_ALERT})
    assert available(issuer, LI_WEI) == 1234567
    assert issuer.ledger.ledger_entries() == []


def test_right_pin_resets_the_tries_even_when_declined_for_funds(issuer, terminal):
    buy(issuer, terminal, CHEN_JIE, 100, pin="0000")
    assert buy(issuer, terminal, CHEN_JIE, 40000)[3] == codes.INSUFFICIENT_FUNDS
    assert issuer.ledger.card_by_pan(CHEN_JIE).pin_tries_left == MAX_PIN_TRIES


def test_undecipherable_pin_block_is_96_and_charges_nothing(issuer, terminal):
    body, pending = terminal.purchase(LI_WEI, 1250)
    fields = cbor_profile.decode(body)
    fields[5] = bytes(16)                     # MAC'd again, so only the block is wrong
    body = resign(fields)
    response = issuer.handle(PURCHASE_REQUEST, body)
    assert terminal.check(response, rebound(pending, body))[3] == codes.SYSTEM_MALFUNCTION
    assert available(issuer, LI_WEI) == 1234567
    assert issuer.ledger.card_by_pan(LI_WEI).pin_tries_left == MAX_PIN_TRIES


@pytest.mark.parametrize("pan,amount,currency,code", [
    (SUN_LI, 100000, 156, codes.INSUFFICIENT_FUNDS),
    (LI_WEI, 600000, 156, codes.EXCEEDS_LIMIT),
    (LI_WEI, 100, 978, codes.INVALID_AMOUNT),
])
def test_amount_declines_alert_nothing(issuer, terminal, pan, amount, currency, code):
    # both cardholders are subscribed to purchase alerts, with a phone on file
    fields = buy(issuer, terminal, pan, amount, currency=currency)
    assert (fields[3], fields[8]) == (code, {1: codes.NOTHING_TO_ALERT})
    assert issuer.ledger.outbox() == []


def test_frozen_card_is_declined_with_a_security_alert(issuer, terminal):
    # as for a balance inquiry: 62, nothing charged, and the cardholder told at once
    fields = buy(issuer, terminal, ZHAO_LEI, 1250)
    assert (fields[3], fields[8]) == (codes.RESTRICTED_CARD,
                                      {1: codes.SECURITY_ALERT, 2: "sms", 3: "135****3333"})
    assert available(issuer, ZHAO_LEI) == 150000 and entries(issuer) == []
    [row] = issuer.ledger.outbox()
    [tx] = issuer.ledger.journal()
    assert (row["kind"], row["status"], row["transaction_id"]) == ("frozen_card", "sent", tx["id"])
    assert row["text"].startswith("Security alert: card ending 0068 was used at terminal "
                                  "T0000001, 2026-11-22 16:02, while it is frozen")
    assert ZHAO_LEI not in row["text"]


# ---- exactly once ---------------------------------------------------------------------

def test_repeated_request_gets_the_original_answer_and_one_debit(issuer, terminal):
    body, pending = terminal.purchase(LI_WEI, 1250)
    first = issuer.handle(PURCHASE_REQUEST, body)
    for _ in range(3):
        assert issuer.handle(PURCHASE_REQUEST, body) == first   # same approval code, MAC
    assert terminal.check(first, pending)[3] == codes.APPROVED
    assert available(issuer, LI_WEI) == 1234567 - 1250
    assert entries(issuer) == [("purchase", terminal.trace, -1250)]
    assert len(issuer.ledger.journal()) == 1
    assert len(issuer.ledger.outbox()) == 1                      # alerted once


def test_repeated_decline_stays_a_decline_after_the_funds_came(issuer, terminal):
    body, pending = terminal.purchase(CHEN_JIE, 40000)
    first = issuer.handle(PURCHASE_REQUEST, body)
    issuer.ledger._conn.execute("UPDATE accounts SET available = 90000, ledger = 90000")
    assert issuer.handle(PURCHASE_REQUEST, body) == first
    assert terminal.check(first, pending)[3] == codes.INSUFFICIENT_FUNDS
    assert issuer.ledger.ledger_entries() == []


def test_repeated_request_survives_a_restart(make_issuer, terminal):
    body, _ = terminal.purchase(LI_WEI, 1250)
    first = make_issuer().handle(PURCHASE_REQUEST, body)
    issuer = make_issuer()
    assert issuer.handle(PURCHASE_REQUEST, body) == first
    assert available(issuer, LI_WEI) == 1234567 - 1250


@pytest.mark.parametrize("other", ["amount", "card", "balance inquiry"])
def test_identity_reused_by_another_request_is_94_and_not_charged(issuer, terminal, other):
    body, _ = terminal.purchase(LI_WEI, 1250, trace=42)
    issuer.handle(PURCHASE_REQUEST, body)
    if other == "balance inquiry":
        # the identity space is shared: an inquiry took trace 43, a purchase reuses it
        inquiry, _ = terminal.request(LI_WEI, trace=43)
        issuer.handle(BALANCE_REQUEST, inquiry)
        body2, pending = terminal.purchase(LI_WEI, 1250, trace=43)
    else:
        pan, amount = (LI_WEI, 9999) if other == "amount" else (ZHANG_MIN, 1250)
        body2, pending = terminal.purchase(pan, amount, trace=42)       # new KSN too
    response = issuer.handle(PURCHASE_REQUEST, body2)
    cddl_check("purchase-response", response)
    fields = terminal.check(response, pending)                 # MAC'd under the new KSN
    assert (fields[3], fields[8]) == (codes.DUPLICATE, {1: codes.NOTHING_TO_ALERT})
    assert entries(issuer) == [("purchase", 42, -1250)]
    assert available(issuer, ZHANG_MIN) == 88000
    # journaled under its own KSN, nothing charged: the same bytes get the same 94
    assert [r["response_code"] for r in issuer.ledger.journal()] == \
        ["00"] + (["00"] if other == "balance inquiry" else []) + ["94"]
    assert issuer.ledger.journal()[-1]["posted"] == 0
    assert issuer.handle(PURCHASE_REQUEST, body2) == response


def test_same_trace_on_another_terminal_is_another_purchase(issuer):
    a = Terminal("T0000001")
    b = provisioned_terminal(issuer.ledger, "T0000002", "90123457")
    assert buy(issuer, a, LI_WEI, 1000, trace=7)[3] == codes.APPROVED
    assert buy(issuer, b, LI_WEI, 1000, trace=7)[3] == codes.APPROVED
    assert available(issuer, LI_WEI) == 1234567 - 2000


# ---- MACs -----------------------------------------------------------------------------

def _tampered(body, what):
    fields = cbor_profile.decode(body)
    if what == "amount":
        fields[8] += 1
    elif what == "amount byte":
        return None                            # done on the bytes below
    elif what == "pan":
        fields[4] = {**fields[4], 1: ZHANG_MIN}
    elif what == "expiry":
        fields[4] = {**fields[4], 2: "3101"}
    elif what == "currency":
        fields[9] = 978
    elif what == "merchant":
        fields[11] = "OTHER SHOP"
    elif what == "trace":
        fields[2] += 1
    elif what == "mac":
        fields[7] = bytes([fields[7][0] ^ 1]) + fields[7][1:]
    return cbor_profile.encode(fields)


@pytest.mark.parametrize("what", ["amount", "amount byte", "pan", "expiry", "currency",
                                  "merchant", "trace", "mac"])
def test_tampered_request_is_refused_by_the_mac_check(issuer, terminal, what, caplog):
    body, pending = terminal.purchase(LI_WEI, 1250)
    tampered = _tampered(body, what)
    if tampered is None:
        # one byte of the amount's encoding changed in place: 1250 is 0x19 0x04 0xE2
        i = body.index(b"\x08\x19\x04\xe2") + 3
        tampered = body[:i] + bytes([body[i] ^ 0x10]) + body[i + 1:]
        assert cbor_profile.decode(tampered)[8] == 1250 ^ 0x10
    response = issuer.handle(PURCHASE_REQUEST, tampered)
    cddl_check("purchase-response", response)
    refused_unauthenticated(response, tampered, terminal, pending)
    assert "purchase T0000001/" in caplog.text and "request MAC does not match" in caplog.text
    assert issuer.ledger.journal() == []
    assert available(issuer, LI_WEI) == 1234567
    assert issuer.ledger.card_by_pan(LI_WEI).pin_tries_left == MAX_PIN_TRIES


def test_purchase_from_a_terminal_with_a_wrong_initial_key_is_refused(issuer):
    rogue = Terminal(initial_key=bytes(16))
    body, pending = rogue.purchase(LI_WEI, 1250)
    response = issuer.handle(PURCHASE_REQUEST, body)
    assert cbor_profile.decode(response)[3] == codes.SECURITY_VIOLATION
    with pytest.raises(SecurityError, match="MAC"):      # under keys the rogue lacks
        rogue.check(response, pending)
    assert issuer.ledger.journal() == []


def test_a_purchase_is_not_a_balance_request_and_back(issuer, terminal):
    purchase, _ = terminal.purchase(LI_WEI, 1250)
    with pytest.raises(IssuerRequestError, match="balance-request: unknown field 1[01]"):
        issuer.handle(BALANCE_REQUEST, purchase)
    inquiry, _ = terminal.request(LI_WEI)
    with pytest.raises(IssuerRequestError, match=r"purchase-request: field 8 \(amount\) is missing"):
        issuer.handle(PURCHASE_REQUEST, inquiry)


@pytest.mark.parametrize("mtype", [0x04, 0x11, 0x13, 0x15, 0x7E])
def test_a_type_the_routes_do_not_hold_is_a_request_error(issuer, terminal, mtype):
    # a response type included: the issuer answers requests only
    purchase, _ = terminal.purchase(LI_WEI, 1250)
    with pytest.raises(IssuerRequestError, match=f"{mtype:#04x} is not a financial request"):
        issuer.handle(mtype, purchase)
    assert issuer.ledger.journal() == []


# ---- malformed requests ---------------------------------------------------------------

MALFORMED = [
    ("amount 0", lambda f: {**f, 8: 0}, r"field 8 \(amount\) is out of range"),
    ("amount negative", lambda f: {**f, 8: -5}, r"field 8 \(amount\) is out of range"),
    ("amount over n12", lambda f: {**f, 8: 10 ** 12}, r"field 8 \(amount\) is out of range"),
    ("amount text", lambda f: {**f, 8: "12.50"}, r"field 8 \(amount\) is not int"),
    ("amount bool", lambda f: {**f, 8: True}, r"field 8 \(amount\) is not int"),
    ("no currency", lambda f: {k: v for k, v in f.items() if k != 9}, r"field 9 \(currency\) is missing"),
    ("currency 1000", lambda f: {**f, 9: 1000}, r"field 9 \(currency\) is out of range"),
    ("no merchant id", lambda f: {k: v for k, v in f.items() if k != 10}, r"field 10 \(merchant id\) is missing"),
    ("long merchant id", lambda f: {**f, 10: "M" * 16}, r"field 10 \(merchant id\) is out of range"),
    ("empty merchant name", lambda f: {**f, 11: ""}, r"field 11 \(merchant name\) is out of range"),
    ("long merchant name", lambda f: {**f, 11: "N" * 23}, r"field 11 \(merchant name\) is out of range"),
    ("reversal key", lambda f: {**f, 12: 1}, "unknown field 12"),
    ("entry mode 0", lambda f: {**f, 18: 0}, r"field 18 \(entry mode\) is out of range"),
    ("empty ICC data", lambda f: {**f, 19: b""}, r"field 19 \(ICC data\) is out of range"),
    ("ICC data not bytes", lambda f: {**f, 19: "9F2608"}, r"field 19 \(ICC data\) is not bytes"),
    ("short PAN", lambda f: {**f, 4: {**f[4], 1: "12345"}}, r"card PAN\) is out of range"),
]


@pytest.mark.parametrize("name,change,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_request_is_a_request_error(issuer, terminal, name, change, message):
    fields = cbor_profile.decode(terminal.purchase(LI_WEI, 1250)[0])
    with pytest.raises(IssuerRequestError, match="purchase-request: .*" + message) as err:
        issuer.handle(PURCHASE_REQUEST, cbor_profile.encode(change(fields)))
    assert LI_WEI not in str(err.value)
    assert issuer.ledger.journal() == []


def test_board_built_requests_and_worst_case_fit_a_frame(terminal):
    body, _ = terminal.purchase(LI_WEI, 1250)
    assert len(body) == 127                   # docs/protocol.md: a typical purchase
    worst = Terminal("T" * 16)
    worst.counter = 0xFFFF0000 - 1            # a 4-byte counter, 16 bits set
    body, _ = worst.purchase("4" * 18 + "2", 999_999_999_999, 999, trace=999999,
                             now=2 ** 63 - 1, merchant_id="M" * 15, merchant_name="N" * 22)
    cddl_check("purchase-request", body)
    assert len(body) == 166 <= 256 - 4        # the frame payload less the link header


# ---- failures -------------------------------------------------------------------------

def test_unexpected_failure_is_a_macd_96_and_nothing_is_charged(issuer, terminal, mocker):
    mocker.patch.object(outbox, "add", side_effect=RuntimeError("disk on fire"))
    body, pending = terminal.purchase(LI_WEI, 1250)
    response = issuer.handle(PURCHASE_REQUEST, body)
    cddl_check("purchase-response", response)
    fields = terminal.check(response, pending)
    assert (fields[3], fields[8]) == (codes.SYSTEM_MALFUNCTION, {1: codes.NOTHING_TO_ALERT})
    assert available(issuer, LI_WEI) == 1234567              # the debit rolled back
    assert issuer.ledger.ledger_entries() == []
    assert [r["response_code"] for r in issuer.ledger.journal()] == ["96"]
    mocker.stopall()
    assert issuer.handle(PURCHASE_REQUEST, body) == response  # the 96 is journaled


def test_failed_posting_rolls_back_the_journal_row(issuer, terminal, mocker):
    mocker.patch.object(Ledger, "post", side_effect=sqlite3.OperationalError("disk I/O error"))
    body, pending = terminal.purchase(LI_WEI, 1250)
    assert terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)[3] == \
        codes.SYSTEM_MALFUNCTION
    [row] = issuer.ledger.journal()
    assert (row["response_code"], row["approval_code"], row["posted"]) == ("96", None, 0)
    assert issuer.ledger.outbox() == []


def test_unavailable_raises_before_anything_happens(make_issuer, terminal):
    issuer = make_issuer(faults=Faults(unavailable=True))
    body, _ = terminal.purchase(LI_WEI, 1250)
    with pytest.raises(IssuerUnavailable):
        issuer.handle(PURCHASE_REQUEST, body)
    assert issuer.ledger.journal() == []


def test_slow_answer_is_late_but_already_charged(make_issuer, terminal, sleeps):
    issuer = make_issuer(faults=Faults(delay_s=4))
    assert buy(issuer, terminal, LI_WEI, 1250)[3] == codes.APPROVED
    assert sleeps == [4]
    assert available(issuer, LI_WEI) == 1234567 - 1250


def test_bad_mac_answer_is_refused_by_the_board_and_charged_once(make_issuer, terminal):
    body, pending = terminal.purchase(LI_WEI, 1250)
    bad = make_issuer(faults=Faults(bad_mac=True)).handle(PURCHASE_REQUEST, body)
    with pytest.raises(SecurityError, match="MAC"):
        terminal.check(bad, pending)
    good = make_issuer().handle(PURCHASE_REQUEST, body)          # the board asks again
    assert terminal.check(good, pending)[3] == codes.APPROVED
    assert available(make_issuer(), LI_WEI) == 1234567 - 1250


# ---- what is logged and kept ----------------------------------------------------------

def test_log_masks_the_pan_and_holds_no_pin(issuer, terminal, caplog):
    with caplog.at_level("DEBUG", logger="posbridge"):
        buy(issuer, terminal, LI_WEI, 1250, pin="2468")
        buy(issuer, terminal, LI_WEI, 1250)
    assert "476173******0011" in caplog.text and LI_WEI not in caplog.text
    assert "2468" not in caplog.text
    assert "purchase T0000001/2 card 476173******0011 CNY 12.50: 00 (approved)" in caplog.text


def test_database_holds_no_request_or_pin_block(issuer, terminal, db_path):
    body, _ = terminal.purchase(LI_WEI, 1250)
    issuer.handle(PURCHASE_REQUEST, body)
    raw = db_path.read_bytes()
    assert body not in raw and cbor_profile.decode(body)[5] not in raw
    assert bytes.fromhex(issuer.ledger.journal()[0]["ksn"]) == cbor_profile.decode(body)[6]


def test_an_altered_copy_of_a_charged_purchase_is_refused_and_logged_as_one(
        issuer, terminal, caplog):
    # a man in the middle lets the purchase through, then sends a copy with another
    # amount (MAC unchanged) for a MAC'd refusal under the same trace and KSN
    body, pending = terminal.purchase(LI_WEI, 1250)
    first = issuer.handle(PURCHASE_REQUEST, body)
    copy = cbor_profile.decode(body)
    copy[8] = 1
    copy = cbor_profile.encode(copy)
    refused_unauthenticated(issuer.handle(PURCHASE_REQUEST, copy), copy, terminal, pending)
    assert "an identity already journaled: an altered copy" in caplog.text
    assert issuer.handle(PURCHASE_REQUEST, body) == first       # the real one, unchanged
    assert terminal.check(first, pending)[3] == codes.APPROVED
    assert available(issuer, LI_WEI) == 1234567 - 1250
