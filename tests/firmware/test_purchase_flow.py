# A purchase visit (transaction.py) against a stand-in terminal: the amount and the PIN,
# the request and its journal entry on flash before it leaves, and what each kind of
# answer, or its absence, leaves on flash and on the screen.
import sys

import cbor
import messages as m
import settings
from fake_terminal import FakeTerminal as Term, CARD, MERCHANT_ID, MERCHANT_NAME, answer_for, request_mac_ok
from transaction import Transaction

NOTE_SMS = {1: 2, 2: "sms", 3: "138****5678"}


def keyed(term, txn, keys):
    term.press(keys)
    term.clock.advance(50)
    return txn.step(term.clock())


def sent_purchase(term, amount=b"1250", pin=b"1234"):
    """A visit with the purchase request sent; (txn, request body)."""
    txn = Transaction(term, CARD)
    keyed(term, txn, b"2")
    assert "Enter amount" in term.display.text()
    keyed(term, txn, amount)
    keyed(term, txn, b"E")
    assert "Enter PIN" in term.display.text() and "CNY 12.50" in term.display.text()
    keyed(term, txn, pin + b"E")
    [(mtype, body)] = term.link.sent
    assert mtype == m.PURCHASE_REQUEST
    return txn, body


def test_the_request_carries_amount_and_merchant_and_is_journaled_before_it_leaves():
    term = Term()
    try:
        txn, body = sent_purchase(term)
        req = cbor.decode(body)
        assert (req[8], req[9], req[10], req[11]) == (1250, settings.CURRENCY, MERCHANT_ID,
                                                      MERCHANT_NAME)
        assert req[4][1] == CARD[0] and len(req[5]) == 16 and request_mac_ok(body)
        [entry] = term.link.journal_at_send[0]     # on flash when it was handed over
        assert entry[:5] == [0, req[2], "".join("%02X" % b for b in req[6]), 1250, 156]
        assert len(entry) == 6       # no reversal, no key: one is built at each try
        # one identity taken, and saved as taken: the next counter and the last trace
        assert req[2] == 1 and req[6][-4:] == b"\x00\x00\x00\x01"
        assert term.next_identity() == (2, 1)
    finally:
        term.close()


def test_cancel_at_the_amount_or_the_pin_sends_nothing():
    for keys in ((b"12X",), (b"12E", b"12X")):
        term = Term()
        try:
            txn = Transaction(term, CARD)
            keyed(term, txn, b"2")
            for k in keys:
                keyed(term, txn, k)
            assert "Cancelled" in term.display.text()
            assert term.link.sent == [] and term.journal() == []
        finally:
            term.close()


def test_approved_is_shown_with_its_code_and_cleared_once_seen():
    term = Term()
    try:
        txn, body = sent_purchase(term)
        assert txn.on_message(m.PURCHASE_RESPONSE, answer_for(
            body, {3: "00", 4: "123456", 5: 1233317, 6: 1233317, 7: 156, 8: NOTE_SMS}))
        text = term.display.text()
        assert "APPROVED" in text and "Approval 123456" in text and "12,333.17" in text
        assert "SMS sent to" in text
        [entry] = term.journal()
        assert entry[0] == 2 and entry[5] == "123456"
        assert keyed(term, txn, b"E") is False        # the result seen: visit over
        assert term.journal() == []
    finally:
        term.close()


def test_a_verified_decline_clears_the_journal_and_nothing_is_reversed():
    term = Term()
    try:
        txn, body = sent_purchase(term)
        txn.on_message(m.PURCHASE_RESPONSE, answer_for(body, {3: "51", 8: {1: 10}}))
        assert "DECLINED 51" in term.display.text() and "Insufficient" in term.display.text()
        assert term.journal() == [] and term.reversals == 0
    finally:
        term.close()


def reversed_with(term, reason):
    [entry] = term.journal()
    assert entry[0] == 1 and entry[5] == reason
    assert term.reversals == 1
    text = term.display.text()
    assert "NOT COMPLETED" in text and "No charge" in text and "CNY 12.50" in text


def test_no_answer_in_time_is_reversed():
    term = Term()
    try:
        txn, _ = sent_purchase(term)
        term.clock.advance(settings.ANSWER_TIMEOUT_MS - 100)
        txn.step(term.clock())
        assert term.journal()[0][0] == 0        # still waiting
        term.clock.advance(100)
        txn.step(term.clock())
        reversed_with(term, 1)
    finally:
        term.close()


def test_an_answer_that_fails_its_mac_is_reversed_even_an_approval():
    term = Term()
    try:
        txn, body = sent_purchase(term)
        txn.on_message(m.PURCHASE_RESPONSE, answer_for(
            body, {3: "00", 4: "123456", 5: 1, 6: 1, 7: 156, 8: NOTE_SMS}, mac_ok=False))
        reversed_with(term, 2)
        assert "APPROVED" not in term.display.all_text()
    finally:
        term.close()


def test_a_link_that_gave_up_on_the_request_reverses_it():
    term = Term()
    try:
        txn, _ = sent_purchase(term)
        txn.on_link_failed(m.PURCHASE_REQUEST)
        reversed_with(term, 1)
    finally:
        term.close()


def test_a_balance_inquiry_never_touches_the_journal():
    term = Term()
    try:
        txn = Transaction(term, CARD)
        keyed(term, txn, b"1")
        keyed(term, txn, b"1234E")
        [(mtype, body)] = term.link.sent
        assert mtype == m.BALANCE_REQUEST and term.journal() == []
        term.clock.advance(settings.ANSWER_TIMEOUT_MS)
        txn.step(term.clock())
        assert "NO ANSWER" in term.display.text() and term.journal() == []
    finally:
        term.close()


def test_purchases_wait_while_too_many_reversals_are_pending():
    term = Term()
    try:
        import journal
        for trace in (5, 7, 9, 11):
            journal.begin(term, trace, bytes(12), 100, 156)
            journal.reverse(term, 1, trace)
        journal = None
        sys.modules.pop("journal", None)
        txn = Transaction(term, CARD)
        keyed(term, txn, b"2")
        assert "Reversals due" in term.display.text() and term.link.sent == []
    finally:
        term.close()


def test_a_terminal_provisioned_without_a_merchant_names_the_default_one():
    term = Term()
    try:
        record = term.store.load("terminal")
        del record["merchant_id"]
        del record["merchant_name"]
        term.store.save("terminal", record)
        txn, body = sent_purchase(term)
        req = cbor.decode(body)
        assert (req[10], req[11]) == (settings.MERCHANT_ID, settings.MERCHANT_NAME)
    finally:
        term.close()


def test_an_exhausted_terminal_sends_nothing():
    term = Term()
    try:
        term.provision(0)
        txn = Transaction(term, CARD)
        keyed(term, txn, b"1")
        keyed(term, txn, b"1234E")
        assert "exhausted" in term.display.text() and term.link.sent == []
    finally:
        term.close()


def test_a_reset_after_the_registers_are_saved_never_reuses_the_ksn():
    term = Term()
    try:
        import terminal_keys
        # the key of counter 1 taken (keys.bin moved on), then the power goes before
        # anything is sent
        taken = terminal_keys.take(term.store, True)
        terminal_keys = taken = None
        sys.modules.pop("terminal_keys", None)
        sys.modules.pop("dukpt", None)
        again = Term(term.directory)        # the board starts again on the same flash
        txn, body = sent_purchase(again)
        req = cbor.decode(body)
        assert req[6][-4:] == b"\x00\x00\x00\x02" and req[2] == 2
        assert again.next_identity() == (3, 2)
    finally:
        term.close()
