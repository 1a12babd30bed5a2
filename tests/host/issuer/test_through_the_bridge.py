"""Purchases and reversals through the bridge to a real issuer (the link mocked): the
answer types, every message checked against docs/protocol.cddl, and the bridge's log
line for each message, which names the fields and never shows the PAN or PIN block."""
import pytest

from posbridge.link import protocol as p
from posbridge.bridge import Bridge
from posbridge.issuer import codes
from posbridge.link.host_link import HostLink
from tests.schema import validate

from .test_purchase import LI_WEI, available


@pytest.fixture
def link(mocker):
    return mocker.Mock(spec=HostLink)


@pytest.fixture
def bridge(link, issuer):
    return Bridge(link, clock=lambda: 0, issuer=issuer)


def sent(link):
    mtype, body = link.send.call_args.args
    validate(mtype, body)
    return mtype, body


def test_purchase_then_its_reversal(bridge, link, issuer, terminal):
    body, purchase = terminal.purchase(LI_WEI, 1250)
    validate(p.PURCHASE_REQUEST, body)
    bridge.handle(p.PURCHASE_REQUEST, body)
    mtype, response = sent(link)
    assert mtype == p.PURCHASE_RESPONSE
    assert terminal.check(response, purchase)[3] == codes.APPROVED
    body, reversal = terminal.reversal(purchase)
    validate(p.REVERSAL_REQUEST, body)
    bridge.handle(p.REVERSAL_REQUEST, body)
    mtype, response = sent(link)
    assert mtype == p.REVERSAL_RESPONSE
    assert terminal.check(response, reversal)[16] == codes.REVERSED
    assert available(issuer, LI_WEI) == 1234567


def test_tampered_purchase_gets_error_6(bridge, link, issuer, terminal):
    body, _ = terminal.purchase(LI_WEI, 1250)
    tampered = body.replace(b"\x08\x19\x04\xe2", b"\x08\x19\x04\xe3")     # amount 1251
    bridge.handle(p.PURCHASE_REQUEST, tampered)
    trace = p.decode_body(body)[2]
    assert sent(link) == (p.ERROR, p.encode_body({1: p.ERR_SECURITY,
                                                  2: "request refused: security",
                                                  3: p.PURCHASE_REQUEST, 4: trace}))
    assert available(issuer, LI_WEI) == 1234567


def test_log_lines_name_the_fields_and_hide_the_card(terminal, issuer):
    body, purchase = terminal.purchase(LI_WEI, 1250)
    line = p.describe(p.PURCHASE_REQUEST, body)
    assert line.startswith("PURCHASE_REQUEST terminal_id='T0000001' trace=1 time=1795305600 "
                           "card='card 476173******0011' pin_block='<16 bytes>' ksn=")
    assert line.endswith("amount=1250 currency=156 merchant_id='104110070110001' "
                         "merchant_name='DEMO SHOP'")
    assert LI_WEI not in line and "3012" not in line        # nor the expiry
    answer = p.describe(p.PURCHASE_RESPONSE, issuer.handle(p.PURCHASE_REQUEST, body))
    assert "response_code='00'" in answer and "available=1233317" in answer
    body, _ = terminal.reversal(purchase, reason=2)
    line = p.describe(p.REVERSAL_REQUEST, body)
    assert "original_trace=1" in line and "reason=2" in line and "amount=1250" in line
    answer = p.describe(p.REVERSAL_RESPONSE, issuer.handle(p.REVERSAL_REQUEST, body))
    assert answer.startswith("REVERSAL_RESPONSE terminal_id='T0000001' trace=2 "
                             "response_code='00' ksn=")
    assert "original_trace=1" in answer and "outcome=1" in answer
