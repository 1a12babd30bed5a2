"""A man in the middle on the serial link who forges the messages that carry no MAC
(HELLO_REPLY, an ERROR about HELLO), splices an answer to another request into a
purchase's place, or replays an old reversal acknowledgement. What must hold: no money
moves without an approval on the board's screen, every approval on the screen is
charged exactly once.

The real firmware under MicroPython, the bridge and the issuer simulator, with the wire
tap (tests/e2e/wiretap.py) rewriting, dropping or adding frames; CRCs are recomputed, so
only the MACs can tell."""
import time

import cbor2
import pytest

from posbridge.issuer import IssuerRequestError
from posbridge.link import protocol as p
from tests.e2e.test_balance_inquiry import visit
from tests.e2e.test_purchase import (LI_WEI, LI_WEI_BALANCE, available, board_journal,
                                     dismiss, purchase)
from tests.e2e.wiretap import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD, DROP


def _forged(payload, mtype, fields):
    """A frame of the man in the middle's own, after the bridge's frame `payload`: a
    sequence number far from the bridge's, so that neither is taken for the other."""
    return bytes([p.PROTOCOL_VERSION, mtype, (payload[2] + 128) & 0xFF, 0]) + \
        p.encode_body(fields)


def _hello_reply():
    return p.HELLO_REPLY, p.build("hello-reply", protocol=p.PROTOCOL_VERSION,
                                  time=int(time.time()), bridge="mitm")


def _error_about_hello():
    return p.ERROR, p.build("error", code=p.ERR_PROTOCOL_VERSION, text="No charge",
                            about_type=p.HELLO)


@pytest.mark.parametrize("forge", [_hello_reply, _error_about_hello],
                         ids=["HELLO_REPLY", "ERROR about HELLO"])
def test_an_unauthenticated_message_does_not_take_the_approval_off_the_screen(
        bank, issuer, forge):
    """Right behind the issuer's MAC'd approval, a forged HELLO_REPLY (or an ERROR about
    HELLO) that would draw the idle (or "Bridge refused") screen over it: the card is
    charged, and the merchant would see no approval."""
    def tamper(direction, payload):
        if direction == BRIDGE_TO_BOARD and payload[1] == p.PURCHASE_RESPONSE:
            return [payload, _forged(payload, *forge())]
        return None

    bank.tap.tamper = tamper
    screen = purchase(bank, LI_WEI, "1250")
    assert screen.lines[0] == "APPROVED"
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250
    time.sleep(1.5)     # the forged frame is in and handled
    assert len(bank.tap.tampered) == 1
    after = bank.emulator.screens[bank.emulator.screens.index(screen) + 1:]
    assert after == [], [s.text for s in after]
    dismiss(bank)
    assert board_journal(bank) == []


def test_an_answer_to_an_earlier_balance_inquiry_is_not_taken_for_the_purchase(
        bank, issuer):
    """The same card's balance inquiry, approved (00, MAC'd under its own KSN), answers
    the purchase in place of the issuer's real answer, relabelled as a purchase
    response: the board waits on, reverses for want of an answer, and the charge the
    issuer made is credited back."""
    answers = []

    def tamper(direction, payload):
        if direction != BRIDGE_TO_BOARD:
            return None
        if payload[1] == p.BALANCE_RESPONSE:
            answers.append(bytes(payload[4:]))
        elif payload[1] == p.PURCHASE_RESPONSE:
            return bytes([payload[0], p.PURCHASE_RESPONSE]) + bytes(payload[2:4]) + answers[0]
        return None

    bank.tap.tamper = tamper
    visit(bank, LI_WEI, "1234")
    dismiss(bank)
    assert cbor2.loads(answers[0])[3] == "00"
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    assert "No answer" in screen.text
    assert all("APPROVED" not in s.text for s in bank.emulator.screens)
    [entry] = board_journal(bank)
    assert (entry[0], entry[5]) == (1, 1)          # to reverse: no answer
    bank.tap.tamper = None
    dismiss(bank, then="Sending reversal")
    done = bank.emulator.wait_for_screen("Acknowledged", timeout=25,
                                         after=bank.emulator.screens.index(screen))
    assert "Credited back" in done.text
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    assert board_journal(bank) == []


def test_a_replayed_reversal_acknowledgement_leaves_the_reversal_on_flash(bank, issuer):
    """The acknowledgement of a first reversal, replayed in place of the second's: the
    board keeps the second reversal on flash until its own acknowledgement comes, and
    the second purchase is credited back."""
    acks = []
    block = {"on": True}

    def tamper(direction, payload):
        if direction != BRIDGE_TO_BOARD:
            return None
        if payload[1] == p.PURCHASE_RESPONSE:
            return DROP                               # every purchase is reversed
        if payload[1] == p.REVERSAL_RESPONSE:
            if not acks:
                acks.append(bytes(payload[4:]))
                return None
            if block["on"]:
                return bytes(payload[:4]) + acks[0]
        return None

    bank.tap.tamper = tamper
    em = bank.emulator
    first = purchase(bank, LI_WEI, "1250", result="No charge")
    dismiss(bank, then="Sending reversal")
    em.wait_for_screen("Acknowledged", timeout=25, after=em.screens.index(first))
    em.wait_for_screen("Insert card", timeout=10, after=len(em.screens) - 1)
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    second = purchase(bank, LI_WEI, "2000", result="No charge")
    dismiss(bank, then="Sending reversal")
    refused = em.wait_for_screen("Not acknowledged", timeout=25,
                                 after=em.screens.index(second))
    assert "No answer" in refused.text
    assert all("Acknowledged" not in s.text for s in em.screens[em.screens.index(second):])
    [entry] = board_journal(bank)
    assert (entry[0], entry[3]) == (1, 2000)      # still on flash
    # the issuer had it (the replay stood in for its answer): credited already
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    block["on"] = False
    done = em.wait_for_screen("Acknowledged", timeout=40, after=em.screens.index(refused))
    # the next try, built afresh, is matched to the one the issuer had
    assert "Reversed before" in done.text
    assert board_journal(bank) == []
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE


def test_purchase_bytes_relabelled_as_a_balance_inquiry_get_no_answer(issuer):
    """A purchase request's bytes sent as a balance request: were they answered, the
    balance response (00, MAC'd under the purchase's KSN, naming these very bytes)
    would pass on the board for the purchase's approval, and nothing be charged. The
    issuer reads a request by its type's schema, and a purchase's fields are not a
    balance request's."""
    from tests.host.issuer.request_builder import TerminalRequestBuilder
    body, _ = TerminalRequestBuilder(now=int(time.time())).purchase(LI_WEI, 1250)
    with pytest.raises(IssuerRequestError, match="unknown field"):
        issuer.handle(p.BALANCE_REQUEST, body)
    assert issuer.ledger.journal() == []
    # the same bytes as what they are: charged
    fields = p.parse("purchase-response", issuer.handle(p.PURCHASE_REQUEST, body))
    assert fields["response_code"] == "00"


def test_a_board_request_relabelled_on_the_wire_is_not_charged(bank, issuer):
    """The purchase request relabelled as a balance request on its way to the bridge:
    refused unread (an ERROR about another type, which the board ignores), so the board
    reverses for want of an answer, and nothing was charged."""
    def tamper(direction, payload):
        if direction == BOARD_TO_BRIDGE and payload[1] == p.PURCHASE_REQUEST:
            return bytes([payload[0], p.BALANCE_REQUEST]) + bytes(payload[2:])
        return None

    bank.tap.tamper = tamper
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    assert "No answer" in screen.text
    assert issuer.ledger.journal() == []
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
