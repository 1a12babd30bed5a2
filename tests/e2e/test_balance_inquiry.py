"""Balance inquiries end to end over pseudo-terminals: the real firmware under MicroPython
(64 KiB heap) with its card reader and PIN pad, the bridge, the issuer simulator on the
demo data (docs/issuer.md), and a wire tap on the link between board and bridge."""
import logging

import cbor2

from posbridge.link import cbor_profile
from posbridge.link import protocol as p
from posbridge.link.framing import FrameSplitter
from posbridge.issuer import cards
from posbridge.board.peripherals import card_record

from .wiretap import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD

LI_WEI = "4761730000000011"        # subscribed, SMS to 138****5678
ZHANG_MIN = "4761730000000029"     # not subscribed
ZHAO_LEI = "6225880000000068"      # card frozen
DEMO_PIN = "1234"


def visit(bank, pan, pin, expiry="3012", result="Card "):
    """Swipe, choose 1 Balance, key the PIN; the screen that answers."""
    em = bank.emulator
    start = len(em.screens)
    em.card_reader_sends(card_record(pan, expiry))
    em.answer_prompts([("1 Balance", "1"), ("Enter PIN", pin + "E")], after=start)
    return em.wait_for_screen(result, timeout=25, after=start)


def back_to_idle(bank):
    start = len(bank.emulator.screens)
    bank.emulator.pin_pad_sends(b"E")
    bank.emulator.wait_for_screen("Insert card", after=start)


def journal(issuer):
    return issuer.ledger.transactions()


def test_approved_inquiry_shows_balance_and_the_sms_sent(bank, issuer):
    screen = visit(bank, LI_WEI, DEMO_PIN)
    assert screen.lines[0] == "BALANCE CNY"
    assert "12,345.67" in screen.text                      # available and ledger
    assert "SMS sent to" in screen.text and "138****5678" in screen.text
    assert "Card ****0011" in screen.text and LI_WEI not in screen.text
    [row] = journal(issuer)
    assert (row["kind"], row["response_code"], row["terminal_id"]) == (
        "balance_inquiry", "00", "T0000001")
    [alert] = issuer.ledger.outbox()
    assert (alert["kind"], alert["channel"], alert["destination"], alert["card_last4"],
            alert["status"]) == ("balance_inquiry", "sms", "138****5678", "0011", "sent")
    assert "12,345.67" in alert["text"] and LI_WEI not in alert["text"]
    back_to_idle(bank)


def test_cardholder_not_subscribed_is_told_so_and_nothing_is_sent(bank, issuer):
    screen = visit(bank, ZHANG_MIN, DEMO_PIN)
    assert "880.00" in screen.text
    assert "Alerts not" in screen.text and "subscribed" in screen.text
    assert [r["response_code"] for r in journal(issuer)] == ["00"]
    assert issuer.ledger.outbox() == []


def test_wrong_pin_is_declined_with_tries_left_and_alerted(bank, issuer):
    screen = visit(bank, LI_WEI, "9999")
    assert screen.lines[0] == "DECLINED 55"
    assert "Incorrect PIN" in screen.text and "2 tries left" in screen.text
    assert "12,345.67" not in screen.text
    assert [r["response_code"] for r in journal(issuer)] == ["55"]
    [alert] = issuer.ledger.outbox()
    assert (alert["kind"], alert["destination"]) == ("wrong_pin", "138****5678")
    back_to_idle(bank)
    # the right PIN next time: approved, tries back to full
    screen = visit(bank, LI_WEI, DEMO_PIN)
    assert screen.lines[0] == "BALANCE CNY"
    assert [r["response_code"] for r in journal(issuer)] == ["55", "00"]


def test_frozen_card_is_declined_as_restricted(bank, issuer):
    screen = visit(bank, ZHAO_LEI, DEMO_PIN)
    assert screen.lines[0] == "DECLINED 62"
    assert "Restricted card" in screen.text
    assert [r["response_code"] for r in journal(issuer)] == ["62"]


def test_messages_of_an_inquiry_match_the_schema(bank, issuer):
    from tests.schema import validate
    visit(bank, LI_WEI, DEMO_PIN)
    financial = [(d, t, b) for d, t, b in bank.messages
                 if t in (p.BALANCE_REQUEST, p.BALANCE_RESPONSE)]
    assert [(d, t) for d, t, _ in financial] == [("rx", p.BALANCE_REQUEST),
                                                 ("tx", p.BALANCE_RESPONSE)]
    for _, mtype, body in financial:
        validate(mtype, body)


def _payloads(raw):
    return FrameSplitter().feed(bytes(raw))


def test_no_clear_pin_and_no_full_pan_outside_the_card_field(bank, issuer, caplog):
    pan, pin = "4761730000000094", "8531"   # a PIN no demo card has, to look for
    cards.add(issuer.ledger, pan=pan, pin=pin, expiry="3012",
              available=4200, currency=156, name="Test Holder",
              phone="13811112222", subscribed=True, channel="sms",
              kinds=("balance_inquiry", "wrong_pin"), status="active")
    caplog.set_level(logging.DEBUG)
    screen = visit(bank, pan, pin)
    assert screen.lines[0] == "BALANCE CNY"
    wire = bank.tap.raw
    # every frame that crossed, both ways; the PAN may only be the request's card field
    requests = 0
    for direction in (BOARD_TO_BRIDGE, BRIDGE_TO_BOARD):
        for payload in _payloads(wire[direction]):
            mtype, body = payload[1], payload[4:]
            if mtype == p.BALANCE_REQUEST:
                fields = cbor2.loads(body)
                assert fields[4][1] == pan
                requests += 1
                body = cbor_profile.encode({k: v for k, v in fields.items() if k != 4})
            assert pan.encode() not in body
            assert pin.encode() not in payload
    assert requests >= 1
    # on the raw wire, as many PANs as request frames sent: none anywhere else
    assert sum(bytes(wire[d]).count(pan.encode()) for d in wire) == requests
    assert all(pin.encode() not in bytes(wire[d]) for d in wire)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    logs += "\n".join(bank.emulator.stderr_lines)
    logs += "\n".join(s.text for s in bank.emulator.screens)
    logs += "\n".join(a["text"] + a["destination"] for a in issuer.ledger.outbox())
    assert pan not in logs and pin not in logs
    assert pan[:6] + "******" + pan[-4:] in logs or "****0094" in logs  # masked is there


def _flip_pan_digit(pan):
    done = []

    def tamper(direction, payload):
        if done or direction != BOARD_TO_BRIDGE or payload[1] != p.BALANCE_REQUEST:
            return None
        at = bytes(payload).index(pan.encode()) + len(pan) - 1
        changed = bytearray(payload)
        changed[at] = ord("2") if changed[at] != ord("2") else ord("3")
        done.append(at)
        return bytes(changed)
    return tamper


def test_request_changed_on_the_wire_is_refused_by_the_issuer_mac(bank, issuer, caplog):
    caplog.set_level(logging.WARNING)
    bank.tap.tamper = _flip_pan_digit(LI_WEI)
    screen = visit(bank, LI_WEI, DEMO_PIN, result="Nothing shown")
    [(_, before, after)] = bank.tap.tampered
    assert sum(a != b for a, b in zip(before, after)) == 1 and len(before) == len(after)
    # the issuer's MAC'd 63 answers the changed bytes, not the board's: no answer to it
    assert screen.lines[0] == "SECURITY ERROR"
    assert journal(issuer) == [] and issuer.ledger.outbox() == []
    assert issuer.ledger.card_by_pan(LI_WEI).pin_tries_left == 3
    [answer] = [cbor2.loads(b) for d, t, b in bank.messages
                if (d, t) == ("tx", p.BALANCE_RESPONSE)]
    assert answer[3] == "63"
    assert any("MAC" in r.getMessage() for r in caplog.records)


def test_response_changed_on_the_wire_is_refused_by_the_board(bank, issuer):
    def tamper(direction, payload):
        if bank.tap.tampered or direction != BRIDGE_TO_BOARD or payload[1] != p.BALANCE_RESPONSE:
            return None
        fields = cbor2.loads(payload[4:])
        fields[5] += 1                   # one cent more available
        return bytes(payload[:4]) + cbor_profile.encode(fields)

    bank.tap.tamper = tamper
    screen = visit(bank, LI_WEI, DEMO_PIN, result="Nothing shown")
    [(_, before, after)] = bank.tap.tampered
    assert sum(a != b for a, b in zip(before, after)) == 1 and len(before) == len(after)
    assert screen.lines[0] == "SECURITY ERROR"
    assert all("12,345.6" not in s.text for s in bank.emulator.screens)
    assert [r["response_code"] for r in journal(issuer)] == ["00"]  # the issuer answered
