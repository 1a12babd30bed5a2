"""The request's time (key 3, the terminal's clock, set by the bridge unauthenticated)
against the issuer's clock: a balance inquiry or purchase more than MAX_REQUEST_AGE_S
old, or more than MAX_REQUEST_AHEAD_S ahead, is declined 68, MAC'd, journaled, never
charged (docs/issuer.md, "Request time"). Reversals are never refused for their age."""
import pytest

from posbridge.issuer import codes
from posbridge.issuer.service import MAX_REQUEST_AGE_S, MAX_REQUEST_AHEAD_S
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST, REVERSAL_REQUEST

from .conftest import ISSUER_NOW
from .test_balance_inquiry import ask
from .test_purchase import LI_WEI, available, buy

EDGES = [(-MAX_REQUEST_AGE_S, codes.APPROVED), (-MAX_REQUEST_AGE_S - 1, codes.TIME_OUT_OF_WINDOW),
         (MAX_REQUEST_AHEAD_S, codes.APPROVED), (MAX_REQUEST_AHEAD_S + 1, codes.TIME_OUT_OF_WINDOW),
         (-30 * 24 * 3600, codes.TIME_OUT_OF_WINDOW), (-ISSUER_NOW, codes.TIME_OUT_OF_WINDOW)]


def test_the_limits_are_the_documented_ones():
    assert (MAX_REQUEST_AGE_S, MAX_REQUEST_AHEAD_S) == (300, 60)


@pytest.mark.parametrize("off, code", EDGES, ids=[f"{o:+d}s" for o, _ in EDGES])
def test_a_purchase_outside_the_window_is_declined_68_and_charges_nothing(
        issuer, terminal, off, code, caplog):
    fields = buy(issuer, terminal, LI_WEI, 1250, now=ISSUER_NOW + off)
    assert fields[3] == code
    [row] = issuer.ledger.journal()
    assert (row["response_code"], row["request_time"]) == (code, ISSUER_NOW + off)
    charged = 1250 if code == codes.APPROVED else 0
    assert available(issuer, LI_WEI) == 1234567 - charged
    assert issuer.ledger.outbox() == [] or code == codes.APPROVED
    if code != codes.APPROVED:
        assert 5 not in fields and fields[8] == {1: codes.NOTHING_TO_ALERT}
        assert "the issuer's clock: 68" in caplog.text


@pytest.mark.parametrize("off", [-MAX_REQUEST_AGE_S - 1, MAX_REQUEST_AHEAD_S + 1])
def test_a_balance_inquiry_outside_the_window_is_declined_68(issuer, terminal, off):
    assert ask(issuer, terminal, LI_WEI, now=ISSUER_NOW + off)[3] == codes.TIME_OUT_OF_WINDOW
    assert issuer.ledger.card_by_pan(LI_WEI).pin_tries_left == 3   # no PIN was tried


def test_a_retry_of_the_same_bytes_after_the_window_gets_its_stored_answer(
        make_issuer, terminal):
    body, pending = terminal.purchase(LI_WEI, 1250, now=ISSUER_NOW)
    first = make_issuer().handle(PURCHASE_REQUEST, body)
    later = make_issuer()
    later._clock = lambda: ISSUER_NOW + 3600
    assert later.handle(PURCHASE_REQUEST, body) == first      # answered when it was fresh
    assert terminal.check(first, pending)[3] == codes.APPROVED
    assert available(later, LI_WEI) == 1234567 - 1250


def test_a_reversal_is_processed_whatever_its_age(issuer, terminal):
    body, purchase = terminal.purchase(LI_WEI, 1250)
    assert terminal.check(issuer.handle(PURCHASE_REQUEST, body), purchase)[3] == "00"
    # kept on the terminal's flash for a month, its time when it was recorded
    issuer._clock = lambda: ISSUER_NOW + 30 * 24 * 3600
    body, reversal = terminal.reversal(purchase, now=ISSUER_NOW)
    fields = terminal.check(issuer.handle(REVERSAL_REQUEST, body), reversal)
    assert (fields[3], fields[16]) == (codes.APPROVED, codes.REVERSED)
    assert available(issuer, LI_WEI) == 1234567


def test_a_purchase_refused_for_its_time_is_reversed_as_nothing_charged(issuer, terminal):
    body, purchase = terminal.purchase(LI_WEI, 1250, now=0)     # a terminal's clock unset
    assert terminal.check(issuer.handle(PURCHASE_REQUEST, body), purchase)[3] == "68"
    body, reversal = terminal.reversal(purchase, now=0)
    fields = terminal.check(issuer.handle(REVERSAL_REQUEST, body), reversal)
    assert (fields[3], fields[16]) == (codes.APPROVED, codes.NOTHING_CHARGED)


def test_the_request_time_is_under_the_mac(issuer, terminal):
    # a man in the middle who sets a stale request's time to now breaks its MAC: 63
    from posbridge.link import cbor_profile
    from .request_builder import refused_unauthenticated
    body, pending = terminal.request(LI_WEI, now=ISSUER_NOW - 30 * 24 * 3600)
    fields = cbor_profile.decode(body)
    fields[3] = ISSUER_NOW
    fresh = cbor_profile.encode(fields)
    refused_unauthenticated(issuer.handle(BALANCE_REQUEST, fresh), fresh, terminal, pending)
    assert issuer.ledger.transactions() == []
