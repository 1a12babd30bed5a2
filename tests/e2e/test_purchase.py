"""Purchases and reversals end to end over pseudo-terminals: the real firmware under
MicroPython (64 KiB heap), the bridge, the issuer simulator on the demo data
(docs/issuer.md), and a wire tap that can change or drop frames on the way."""
import json

import cbor2

from posbridge.link import cbor_profile
from posbridge.link import protocol as p
from posbridge.board.peripherals import card_record, pin_keys

from .wiretap import BRIDGE_TO_BOARD, DROP

LI_WEI = "4761730000000011"        # CNY 12,345.67, SMS alerts, single-purchase limit 5,000.00
ZHANG_MIN = "4761730000000029"     # CNY 880.00, not subscribed
DEMO_PIN = "1234"
LI_WEI_BALANCE = 1234567


def key_purchase(bank, pan, amount_keys, pin=DEMO_PIN):
    """Swipe, choose 2 Purchase, key the amount and the PIN; the index of the first screen
    of the visit (the answer is not waited for)."""
    em = bank.emulator
    start = len(em.screens)
    em.card_reader_sends(card_record(pan, "3012"))
    em.answer_prompts([("2 Purchase", "2"), ("Enter amount", amount_keys + "E"),
                       ("Enter PIN", pin + "E")], after=start)
    return start


def purchase(bank, pan, amount_keys, pin=DEMO_PIN, result="Card "):
    """key_purchase, then the screen that answers."""
    start = key_purchase(bank, pan, amount_keys, pin)
    return bank.emulator.wait_for_screen(result, timeout=30, after=start)


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


def _drop(mtype):
    """A tamper function that drops every frame of `mtype` from the bridge."""
    def tamper(direction, payload):
        if direction != BRIDGE_TO_BOARD or payload[1] != mtype:
            return None
        return DROP
    return tamper


def _flip_mac(mtypes, times=None):
    """A tamper function that flips a bit of the MAC of answers of `mtypes` from the
    bridge (all, or the first `times`): answers the board must refuse at once."""
    flipped = []

    def tamper(direction, payload):
        if direction != BRIDGE_TO_BOARD or payload[1] not in mtypes:
            return None
        if times is not None and len(flipped) >= times:
            return None
        fields = cbor2.loads(payload[4:])
        mac = bytearray(fields[15])
        mac[0] ^= 1
        fields[15] = bytes(mac)
        flipped.append(payload[1])
        return bytes(payload[:4]) + cbor_profile.encode(fields)
    return tamper


def test_lost_answer_is_reversed_and_the_balance_restored(bank, issuer):
    bank.tap.tamper = _drop(p.PURCHASE_RESPONSE)
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    assert screen.lines[0] == "NOT COMPLETED"
    # the issuer had charged it; the board never knew
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250
    [entry] = board_journal(bank)
    assert entry[0] == 1 and entry[5] == 1           # to reverse, reason 1 (no answer)
    # nothing of the card or the PIN on the board's flash, nor in its output
    for f in bank.emulator.state_dir.iterdir():
        data = f.read_bytes()
        assert LI_WEI.encode() not in data and b"0000000011" not in data, f.name
        assert b'"' + DEMO_PIN.encode() + b'"' not in data, f.name
    assert all(LI_WEI not in line for line in bank.emulator.stderr_lines)
    dismiss(bank, then="Sending reversal")
    done = bank.emulator.wait_for_screen("Acknowledged", timeout=20)
    assert "Credited back" in done.text
    assert "SMS sent to" in done.text and "138****5678" in done.text     # the credit's alert
    bank.emulator.wait_for_screen("Insert card", after=bank.emulator.screens.index(done))
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    purchase_row, reversal_row = issuer.ledger.journal()
    assert (purchase_row["posted"], reversal_row["posted"]) == (-1250, 1250)
    assert (reversal_row["kind"], reversal_row["original_trace"],
            reversal_row["reversal_reason"], reversal_row["reversal_outcome"]) == (
        "reversal", purchase_row["trace_number"], 1, 1)
    assert purchase_row["reversed_by"] == reversal_row["id"]
    assert board_journal(bank) == []
    # the cardholder heard of the charge, then of its cancellation
    charge, credit = issuer.ledger.outbox()
    assert (charge["kind"], charge["status"], charge["transaction_id"]) == \
        ("purchase", "sent", purchase_row["id"])
    assert (credit["kind"], credit["status"], credit["transaction_id"]) == \
        ("reversal", "sent", reversal_row["id"])
    assert "purchase of CNY 12.50 at" in credit["text"]
    assert "cancelled, credited back" in credit["text"] and "Available CNY 12,345.67" in \
        credit["text"]


def test_answer_failing_its_mac_is_reversed_though_it_said_approved(bank, issuer):
    bank.tap.tamper = _flip_mac((p.PURCHASE_RESPONSE,))
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    assert all("APPROVED" not in s.text for s in bank.emulator.screens)
    assert board_journal(bank)[0][5] == 2              # reason 2: failed verification
    dismiss(bank, then="Sending reversal")
    bank.emulator.wait_for_screen("Acknowledged", timeout=20,
                                  after=bank.emulator.screens.index(screen))
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    assert [r["reversal_reason"] for r in issuer.ledger.journal()] == [None, 2]
    assert board_journal(bank) == []


def test_issuer_unavailable_is_reversed_and_the_reversal_waits_for_it(bank, issuer):
    # an ERROR carries no MAC: it may stand where an approval was, so even "issuer
    # unavailable" leaves the purchase reversed, and the reversal waits for the issuer
    from posbridge.issuer import Faults
    issuer.faults = Faults(unavailable=True)
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    assert screen.lines[0] == "NOT COMPLETED" and "unavailable" in screen.text
    [entry] = board_journal(bank)
    assert (entry[0], entry[5]) == (1, 4)            # to reverse: an ERROR came instead
    assert issuer.ledger.journal() == []
    dismiss(bank, then="Sending reversal")
    bank.emulator.wait_for_screen("Not acknowledged", timeout=25,
                                  after=bank.emulator.screens.index(screen))
    issuer.faults = Faults()
    done = bank.emulator.wait_for_screen("Acknowledged\n", timeout=40,
                                         after=bank.emulator.screens.index(screen))
    assert "Nothing charged" in done.text
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE and board_journal(bank) == []
    [row] = issuer.ledger.journal()                 # recorded: a late copy gets 94
    assert (row["kind"], row["reversal_outcome"]) == ("reversal", 2)


def test_a_reversal_goes_again_built_afresh_until_acknowledged(bank, issuer):
    # the purchase's answer and the first reversal answer fail their MAC on the way: the
    # issuer credited the purchase back at the first try, and the next, a new request
    # under a new trace and KSN, is answered "already reversed"
    purchase_answer = _flip_mac((p.PURCHASE_RESPONSE,))
    reversal_answer = _flip_mac((p.REVERSAL_RESPONSE,), times=1)
    bank.tap.tamper = lambda d, payload: purchase_answer(d, payload) or reversal_answer(
        d, payload)
    purchase(bank, LI_WEI, "1250", result="No charge")
    start = len(bank.emulator.screens)
    bank.emulator.pin_pad_sends(b"E")
    bank.emulator.wait_for_screen("Not acknowledged", timeout=25, after=start)
    assert len(board_journal(bank)) == 1
    bank.emulator.wait_for_screen("Acknowledged\n", timeout=25, after=start)
    first, *again = sent(bank, p.REVERSAL_REQUEST)
    assert again
    for r in again:      # each try a new request of the same purchase
        assert (r[2], r[6]) != (first[2], first[6])
        assert [r[k] for k in (8, 9, 12, 13, 14)] == [first[k] for k in (8, 9, 12, 13, 14)]
    traces = [r[2] for r in [first] + again]
    ksns = [r[6] for r in [first] + again]
    assert len(set(traces)) == len(traces) and len(set(ksns)) == len(ksns)
    assert any("Reversed before" in s.text for s in bank.emulator.screens[start:])
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE  # credited once
    assert [e["amount"] for e in issuer.ledger.ledger_entries()] == [-1250, 1250]
    assert board_journal(bank) == []


def test_a_reversal_whose_identity_is_taken_goes_under_a_new_one(bank, issuer):
    from tests.host.issuer.request_builder import TerminalRequestBuilder
    # the board's first purchase is trace 1 and its reversal trace 2: take trace 2, with
    # the board's key and its KSN counter 1, which the board then goes on from (the issuer
    # refuses a KSN counter used before)
    body, _ = TerminalRequestBuilder().request(ZHANG_MIN, trace=2)
    issuer.handle(p.BALANCE_REQUEST, body)
    from posbridge.board.provision import TEST_INITIAL_KEY_ID, register_record
    from posbridge.issuer.dukpt import derive_initial_key
    from tests.host.issuer.request_builder import BDK
    (bank.emulator.state_dir / "keys.bin").write_bytes(register_record(
        derive_initial_key(BDK, TEST_INITIAL_KEY_ID), TEST_INITIAL_KEY_ID, 2, 0))
    bank.tap.tamper = _flip_mac((p.PURCHASE_RESPONSE,))
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    bank.emulator.pin_pad_sends(b"E")
    start = bank.emulator.screens.index(screen)
    bank.emulator.wait_for_screen("Refused 94", timeout=25, after=start)
    bank.emulator.wait_for_screen("Acknowledged\n", timeout=25, after=start)
    reversals = sent(bank, p.REVERSAL_REQUEST)
    assert [r[2] for r in reversals] == [2, 3] and reversals[0][6] != reversals[1][6]
    assert reversals[1][12] == 1                           # still the purchase's trace
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE


def test_cancel_before_the_request_leaves_sends_nothing(bank, issuer):
    em = bank.emulator
    for presses in (("X",), ("500", "X")):
        start = len(em.screens)
        em.card_reader_sends(card_record(LI_WEI, "3012"))
        em.wait_for_screen("2 Purchase", after=start)
        em.pin_pad_sends(b"2")
        em.wait_for_screen("Enter amount", after=start)
        for keys in presses:
            em.pin_pad_sends(pin_keys(keys))
        em.wait_for_screen("Cancelled", after=start)
        em.wait_for_screen("Insert card", after=start + 1)
    start = len(em.screens)
    em.card_reader_sends(card_record(LI_WEI, "3012"))
    em.answer_prompts([("2 Purchase", "2"), ("Enter amount", "500E"), ("Enter PIN", "12X")],
                      after=start)
    em.wait_for_screen("Cancelled", after=start)
    assert sent(bank, p.PURCHASE_REQUEST) == [] and issuer.ledger.journal() == []
    assert board_journal(bank) == []


def test_declines_over_the_limit_and_a_wrong_pin(bank, issuer):
    screen = purchase(bank, LI_WEI, "600000")              # limit 5,000.00
    assert screen.lines[0] == "DECLINED 61" and "Exceeds amount" in screen.text
    dismiss(bank)
    screen = purchase(bank, LI_WEI, "1250", pin="9999")
    assert screen.lines[0] == "DECLINED 55" and "2 tries left" in screen.text
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    assert [r["response_code"] for r in issuer.ledger.journal()] == ["61", "55"]
    assert board_journal(bank) == []


def test_purchase_and_reversal_messages_match_the_schema(bank, issuer):
    from tests.schema import validate
    purchase(bank, LI_WEI, "1250")
    dismiss(bank)
    bank.tap.tamper = _flip_mac((p.PURCHASE_RESPONSE,))
    purchase(bank, LI_WEI, "999", result="No charge")
    dismiss(bank, then="Acknowledged", timeout=25)
    seen = set()
    for _, mtype, body in bank.messages:
        if mtype in (p.PURCHASE_REQUEST, p.PURCHASE_RESPONSE, p.REVERSAL_REQUEST,
                     p.REVERSAL_RESPONSE):
            validate(mtype, body)
            seen.add(mtype)
    assert len(seen) == 4
