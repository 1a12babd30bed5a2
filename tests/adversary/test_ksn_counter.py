"""KSN counters only move forward: per initial key ID the issuer keeps the highest
counter it took, and a request at or below it is refused as a security error (in the
log, the ledger untouched). A byte-identical retransmission still gets its stored
answer; a reversal built before later requests may still come under its own counter."""
import logging
import threading

import pytest

from posbridge.issuer import Issuer, IssuerSecurityError, Ledger, Policy, codes
from posbridge.link.protocol import PURCHASE_REQUEST

from ._issuer import (ISSUER_NOW, LI_WEI, OPENING, ZHANG_MIN, db_path,  # noqa: F401
                      demo_template, issuer, make_issuer, money, refused, send, sleeps,
                      terminal)


@pytest.fixture(autouse=True)
def logs(caplog):
    caplog.set_level(logging.INFO, logger="posbridge.issuer")


def counter(pending):
    return int.from_bytes(pending.ksn[8:], "big")


def test_a_used_counter_with_a_new_trace_is_refused(issuer, terminal, caplog):
    first = terminal.purchase(LI_WEI, 1250)
    assert send(issuer, terminal, first)[3] == codes.APPROVED
    before = money(issuer)
    terminal.counter -= 1                          # the same KSN, a new trace
    again = terminal.purchase(ZHANG_MIN, 88000)
    assert again[1].ksn == first[1].ksn and again[1].trace != first[1].trace
    refused(issuer, again, caplog, f"purchase-request T0000001/{again[1].trace} refused",
            f"KSN counter {counter(first[1])} of 1234567890123456 is not above the "
            f"highest used, {counter(first[1])}")
    terminal.counter -= 1                          # lower still
    refused(issuer, terminal.request(ZHANG_MIN), caplog, "is not above the highest used")
    assert money(issuer) == before
    # the same bytes again are a retransmission: the stored answer, nothing more
    assert send(issuer, terminal, first)[3] == codes.APPROVED
    assert money(issuer) == before


def test_a_retransmission_gets_its_stored_answer_after_later_requests(issuer, terminal):
    first = terminal.purchase(LI_WEI, 1250)
    answer = issuer.handle(PURCHASE_REQUEST, first[0])
    send(issuer, terminal, terminal.purchase(LI_WEI, 100))
    send(issuer, terminal, terminal.request(LI_WEI))
    assert issuer.handle(PURCHASE_REQUEST, first[0]) == answer
    assert issuer.ledger.card_by_pan(LI_WEI).available == OPENING - 1350


def test_a_reversal_built_before_later_purchases_is_taken(issuer, terminal):
    # a terminal that builds a reversal once and sends the same bytes at each try; its
    # tries back off, so later purchases may go first, under higher counters
    purchase = terminal.purchase(LI_WEI, 1250)
    assert send(issuer, terminal, purchase)[3] == codes.APPROVED
    reversal = terminal.reversal(purchase[1])
    send(issuer, terminal, terminal.purchase(LI_WEI, 100))
    assert counter(reversal[1]) < terminal.counter
    assert send(issuer, terminal, reversal)[16] == codes.REVERSED
    assert issuer.ledger.card_by_pan(LI_WEI).available == OPENING - 100


def test_a_reversals_counter_is_used_once(issuer, terminal, caplog):
    purchase = terminal.purchase(LI_WEI, 1250)
    send(issuer, terminal, purchase)
    reversal = terminal.reversal(purchase[1])
    send(issuer, terminal, reversal)
    terminal.counter -= 1                           # its KSN again, another trace
    before = money(issuer)
    refused(issuer, terminal.reversal(purchase[1]), caplog, "is not above the highest used")
    assert money(issuer) == before


def test_a_purchases_late_frame_after_a_later_purchase_is_refused_not_charged(
        issuer, terminal, caplog):
    late = terminal.purchase(LI_WEI, 1250)         # its answer never came: reversed
    reversal = terminal.reversal(late[1])
    send(issuer, terminal, terminal.purchase(LI_WEI, 100))
    refused(issuer, late, caplog, "is not above the highest used")
    assert send(issuer, terminal, reversal)[16] == codes.NOTHING_CHARGED
    # once its reversal is journaled, the same late frame gets a MAC'd 94, never a charge
    assert send(issuer, terminal, late)[3] == codes.DUPLICATE
    assert issuer.ledger.card_by_pan(LI_WEI).available == OPENING - 100


def test_concurrent_requests_with_one_counter_take_it_once(db_path, terminal):
    # two issuer processes (two connections) on one database, the same KSN counter
    a = terminal.purchase(LI_WEI, 1000)
    terminal.counter -= 1
    b = terminal.purchase(ZHANG_MIN, 1000)
    issuers = [Issuer(Ledger.open(db_path), Policy(), clock=lambda: ISSUER_NOW)
               for _ in range(2)]
    start = threading.Barrier(2)
    results = []

    def run(issuer, body):
        start.wait()
        try:
            results.append(issuer.handle(PURCHASE_REQUEST, body))
        except IssuerSecurityError:
            results.append("refused")
    threads = [threading.Thread(target=run, args=(i, r[0])) for i, r in zip(issuers, (a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert sorted(map(type, results), key=str) == [bytes, str]
        assert len(issuers[0].ledger.journal()) == 1
    finally:
        for i in issuers:
            i.close()
