"""Failing on purpose: issuer unavailable, slow answer, bad response MAC."""
import pytest

from posbridge.link import cbor_profile
from posbridge.link.protocol import BALANCE_REQUEST, BALANCE_RESPONSE
from posbridge.issuer import Faults, Issuer, IssuerUnavailable, Ledger, codes
from posbridge.issuer.faults import corrupt_mac

from .conftest import ISSUER_NOW
from .request_builder import SecurityError
from .test_balance_inquiry import LI_WEI, ask


def test_unavailable_raises_before_anything_happens(make_issuer, terminal):
    issuer = make_issuer(faults=Faults(unavailable=True))
    assert not issuer.reachable()
    body, _ = terminal.request(LI_WEI)
    with pytest.raises(IssuerUnavailable):
        issuer.handle(BALANCE_REQUEST, body)
    with pytest.raises(IssuerUnavailable):
        issuer.handle(BALANCE_REQUEST, b"not even CBOR")
    assert issuer.ledger.transactions() == []


def test_slow_answer_is_late_but_already_journaled(db_path, terminal):
    seen = []
    issuer = Issuer(Ledger.open(db_path), faults=Faults(delay_s=2.5), clock=lambda: ISSUER_NOW,
                    sleep=lambda s: seen.append((s, len(issuer.ledger.transactions()))))
    try:
        assert ask(issuer, terminal, LI_WEI)[3] == codes.APPROVED
    finally:
        issuer.close()
    assert seen == [(2.5, 1)]


def test_bad_mac_is_refused_by_the_board(make_issuer, terminal):
    issuer = make_issuer(faults=Faults(bad_mac=True))
    body, pending = terminal.request(LI_WEI)
    response = issuer.handle(BALANCE_REQUEST, body)
    with pytest.raises(SecurityError, match="MAC"):
        terminal.check(response, pending)
    # only the MAC differs from what was journaled
    stored = issuer.ledger.find_transaction(terminal.terminal_id, terminal.trace).response
    a, b = cbor_profile.decode(response), cbor_profile.decode(stored)
    assert a.pop(15) != b.pop(15) and a == b


def test_bad_mac_also_on_a_repeated_answer(make_issuer, terminal):
    body, pending = terminal.request(LI_WEI)
    good = make_issuer().handle(BALANCE_REQUEST, body)
    bad = make_issuer(faults=Faults(bad_mac=True)).handle(BALANCE_REQUEST, body)
    assert bad == corrupt_mac(BALANCE_RESPONSE, good) != good
    assert terminal.check(good, pending)[3] == codes.APPROVED


def test_corrupt_mac_flips_one_bit():
    body = cbor_profile.encode({1: "T", 15: bytes(8)})
    assert cbor_profile.decode(corrupt_mac(BALANCE_RESPONSE, body))[15] == b"\x01" + bytes(7)


@pytest.mark.parametrize("spec,faults", [
    ("", Faults()),
    ("unavailable", Faults(unavailable=True)),
    ("delay=2.5", Faults(delay_s=2.5)),
    ("bad-mac", Faults(bad_mac=True)),
    (" delay=1 , bad-mac ", Faults(delay_s=1.0, bad_mac=True)),
])
def test_fault_spec(spec, faults):
    assert Faults.from_spec(spec) == faults


@pytest.mark.parametrize("spec", ["slow", "delay=", "delay=-1", "delay=x", "bad_mac"])
def test_bad_fault_spec_names_the_word(spec):
    with pytest.raises(ValueError, match="issuer fault"):
        Faults.from_spec(spec)


def test_open_takes_policy_and_faults_from_the_environment(db_path, monkeypatch):
    monkeypatch.setenv("POSBRIDGE_ISSUER_FAULTS", "unavailable")
    monkeypatch.setenv("POSBRIDGE_ISSUER_POLICY", "no-balance-alerts")
    issuer = Issuer.open(db_path)
    try:
        assert issuer.faults == Faults(unavailable=True)
        assert issuer.policy.alert_balance_inquiries is False
    finally:
        issuer.close()
