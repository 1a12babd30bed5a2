"""Purchases and reversals end to end over pseudo-terminals: the real firmware under
MicroPython (64 KiB heap), the bridge, the issuer simulator on the demo data
(docs/issuer.md), and a wire tap that can change or drop frames on the way."""
import json

import cbor2

from posbridge import protocol as p
from posbridge.peripherals import card_record, pin_keys

from .wiretap import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD, DROP

LI_WEI = "4761730000000011"        # CNY 12,345.67, SMS alerts, single-purchase limit 5,000.00
ZHANG_MIN = "4761730000000029"     # CNY 880.00, not subscribed
DEMO_PIN = "1234"
LI_WEI_BALANCE = 1234567


def purchase(bank, pan, amount_keys, pin=DEMO_PIN, result="Card "):
    """Swipe, choose 2 Purchase, key the amount and the PIN; the screen that answers."""
    em = bank.emulator
    start = len(em.screens)
    em.card_reader_sends(card_record(pan, "3012"))
    em.wait_for_screen("2 Purchase", after=start)
    em.pin_pad_sends(b"2")
    em.wait_for_screen("Enter amount", after=start)
    em.pin_pad_sends(pin_keys(amount_keys + "E"))
    em.wait_for_screen("Enter PIN", after=start)
    em.pin_pad_sends(pin_keys(pin + "E"))
    return em.wait_for_screen(result, timeout=30, after=start)


def dismiss(bank, then="Insert card", timeout=10):
    start = len(bank.emulator.screens)
    bank.emulator.pin_pad_sends(b"E")
    return bank.emulator.wait_for_screen(then, timeout=timeout, after=start)


def board_journal(bank):
    path = bank.emulator.state_dir / "journal.json"
    return json.loads(path.read_text())["entries"] if path.exists() else []


def available(issuer, pan):
    return issuer.ledger.card_by_pan(pan).available


def sent(bank, mtype):
    """Bodies of the messages of `mtype` that crossed the link, decoded."""
    return [cbor2.loads(b) for _, t, b in bank.messages if t == mtype]


def test_approved_purchase_shows_approval_balance_and_the_sms(bank, issuer):
    screen = purchase(bank, LI_WEI, "1250")
    assert screen.lines[0] == "APPROVED"
    assert "CNY 12.50" in screen.text
    [row] = issuer.ledger.journal()
    assert (row["kind"], row["response_code"], row["amount"], row["currency"],
            row["posted"], row["merchant_id"], row["merchant_name"]) == (
        "purchase", "00", 1250, 156, -1250, "104110070110001", "DEMO SHOP")
    assert "Approval " + row["approval_code"] in screen.text
    assert "CNY 12,333.17" in screen.text                 # available after it
    assert "SMS sent to" in screen.text and "138****5678" in screen.text
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250
    [alert] = issuer.ledger.outbox()
    assert (alert["kind"], alert["channel"], alert["destination"], alert["card_last4"]) == (
        "purchase", "sms", "138****5678", "0011")
    assert "12.50" in alert["text"] and "DEMO SHOP" in alert["text"]
    assert LI_WEI not in alert["text"]
    # approved on flash while it is shown; gone once the result screen is
    [entry] = board_journal(bank)
    assert (entry[0], entry[1], entry[3], entry[4], entry[5]) == (
        2, row["trace_number"], 1250, 156, row["approval_code"])
    dismiss(bank)
    assert board_journal(bank) == []
    assert sent(bank, p.REVERSAL_REQUEST) == []


def test_insufficient_funds_is_declined_and_nothing_is_charged(bank, issuer):
    screen = purchase(bank, ZHANG_MIN, "100000")            # CNY 1,000.00 of 880.00
    assert screen.lines[0] == "DECLINED 51"
    assert "Insufficient" in screen.text and "CNY 1,000.00" in screen.text
    [row] = issuer.ledger.journal()
    assert (row["response_code"], row["posted"]) == ("51", 0)
    assert available(issuer, ZHANG_MIN) == 88000
    assert board_journal(bank) == [] and sent(bank, p.REVERSAL_REQUEST) == []


def _drop(mtype, times=None):
    """A tamper function that drops the frames of `mtype` from the bridge (all of them,
    or the first `times`)."""
    dropped = []

    def tamper(direction, payload):
        if direction != BRIDGE_TO_BOARD or payload[1] != mtype:
            return None
        if times is not None and len(dropped) >= times * 6:   # every retransmission
            return None
        dropped.append(payload)
        return DROP
    return tamper


def test_lost_answer_is_reversed_and_the_balance_restored(bank, issuer):
    bank.tap.tamper = _drop(p.PURCHASE_RESPONSE)
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    assert screen.lines[0] == "NOT COMPLETED"
    # the issuer had charged it; the board never knew
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250
    [entry] = board_journal(bank)
    assert entry[0] == 1 and entry[5] == 1           # to reverse, reason 1 (no answer)
    dismiss(bank, then="Sending reversal")
    done = bank.emulator.wait_for_screen("Acknowledged", timeout=20)
    assert "Credited back" in done.text
    bank.emulator.wait_for_screen("Insert card", after=bank.emulator.screens.index(done))
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    purchase_row, reversal_row = issuer.ledger.journal()
    assert (purchase_row["posted"], reversal_row["posted"]) == (-1250, 1250)
    assert (reversal_row["kind"], reversal_row["original_trace"],
            reversal_row["reversal_reason"], reversal_row["reversal_outcome"]) == (
        "reversal", purchase_row["trace_number"], 1, 1)
    assert purchase_row["reversed_by"] == reversal_row["id"]
    assert board_journal(bank) == []
