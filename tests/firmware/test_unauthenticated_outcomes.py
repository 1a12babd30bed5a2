# A purchase's end as the visit (transaction.py) takes it when no MAC-verified answer to
# its very bytes comes: an ERROR of any code, or a MAC'd answer to an altered copy of
# the request. Unless a MAC-verified answer says otherwise, reverse. Apart from
# test_purchase_flow.py: one test module's code at a time in a 64 KiB heap.
import hashlib

import cbor
import messages as m
from fake_terminal import FakeTerminal as Term, CARD, answer_for
from transaction import Transaction


def sent_purchase(term):
    """A visit with its purchase of CNY 12.50 sent; (txn, request body)."""
    txn = Transaction(term, CARD)
    for keys in (b"2", b"1250", b"E", b"1234E"):
        term.press(keys)
        term.clock.advance(50)
        txn.step(term.clock())
    [(mtype, body)] = term.link.sent
    assert mtype == m.PURCHASE_REQUEST
    return txn, body


def reversed_with(term, reason):
    [entry] = term.journal()
    assert entry[0] == 1 and entry[5] == reason and term.reversals == 1
    text = term.display.text()
    assert "NOT COMPLETED" in text and "No charge" in text and "CNY 12.50" in text


def test_every_error_reverses_a_purchase_whatever_its_code():
    # An ERROR carries no MAC: anyone on the wire can send one where the issuer's
    # approval was. Its code only says what the screen tells the merchant.
    for code, why in ((1, "Request refused"), (2, "Request refused"),
                      (3, "Request refused"), (4, "Request refused"),
                      (5, "unavailable"), (6, "security check")):
        term = Term()
        try:
            txn, _ = sent_purchase(term)
            # an ERROR naming another trace is about an earlier request: not this one's
            assert not txn.on_error({1: code, 2: "x", 3: m.PURCHASE_REQUEST,
                                     4: txn.trace % 999999 + 1})
            assert not txn.on_error({1: code, 2: "x", 3: m.PURCHASE_REQUEST})
            assert term.journal()[0][0] == 0          # still in flight
            assert txn.on_error({1: code, 2: "x", 3: m.PURCHASE_REQUEST, 4: txn.trace})
            reversed_with(term, 4)
            assert why in term.display.text()
        finally:
            term.close()


def test_a_macd_decline_of_an_altered_copy_is_no_answer_and_reverses():
    # the issuer's MAC'd refusal of a copy of the request altered on the way (same
    # terminal id, trace and KSN, other bytes)
    term = Term()
    try:
        txn, body = sent_purchase(term)
        fields = cbor.decode(body)
        fields[8] = 1
        altered = cbor.encode(fields)
        assert txn.on_message(m.PURCHASE_RESPONSE, answer_for(
            body, {3: "63", 8: {1: 10}, 17: hashlib.sha256(altered).digest()}))
        reversed_with(term, 2)
        assert "DECLINED" not in term.display.all_text()
    finally:
        term.close()


def test_a_macd_decline_of_its_own_bytes_settles_it():
    # the issuer's own refusal (a clock set wrong: 68) answers these very bytes
    term = Term()
    try:
        txn, body = sent_purchase(term)
        assert txn.on_message(m.PURCHASE_RESPONSE, answer_for(body, {3: "68", 8: {1: 10}}))
        assert "DECLINED 68" in term.display.text()
        assert "clock wrong" in term.display.text()
        assert term.journal() == [] and term.reversals == 0
    finally:
        term.close()
