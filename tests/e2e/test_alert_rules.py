"""The notification engine seen from the terminal: a purchase, a balance inquiry, three
wrong PINs and a freeze, run through the emulated board (the real firmware under
MicroPython), produce exactly the alerts the rules say (docs/issuer.md), in the
cardholder's language, and the board shows what was done about each."""
import re

import pytest
from click.testing import CliRunner

from posbridge.issuer.cli import issuer as issuer_group
from posbridge.board.peripherals import card_record

LI_WEI = "4761730000000011"     # subscribed to every kind, SMS to 138****5678
CJK = re.compile(r"[\u4e00-\u9fff]")


def issuer_cli(issuer, *args):
    # the issuer group itself: the top-level command would set up logging for the process
    result = CliRunner().invoke(issuer_group, ["--db", str(issuer.ledger.path)] + list(args))
    assert result.exit_code == 0, result.output
    return result.output


def visit(bank, choice, pin, result):
    """Swipe Li Wei's card, answer the menu (and the amount), then the PIN."""
    em = bank.emulator
    start = len(em.screens)
    em.card_reader_sends(card_record(LI_WEI, "3012"))
    em.answer_prompts(choice + [("Enter PIN", pin + "E")], after=start)
    screen = em.wait_for_screen(result, timeout=30, after=start)
    at = len(em.screens)
    em.pin_pad_sends(b"E")
    em.wait_for_screen("Insert card", after=at)
    return screen


BALANCE = [("1 Balance", "1")]
PURCHASE = [("2 Purchase", "2"), ("Enter amount", "20000E")]    # CNY 200.00


@pytest.mark.parametrize("language", ["en", "zh"])
def test_purchase_inquiry_three_wrong_pins_and_a_freeze(bank, issuer, language):
    # quiet hours off, so the outcome does not depend on the time the test runs at
    issuer_cli(issuer, "alerts", "set", "--pan", LI_WEI, "--language", language,
               "--quiet", "none")
    shown = [
        visit(bank, PURCHASE, "1234", "APPROVED"),
        visit(bank, BALANCE, "1234", "BALANCE CNY"),
        visit(bank, BALANCE, "9999", "DECLINED 55"),
        visit(bank, BALANCE, "9999", "DECLINED 55"),
        visit(bank, BALANCE, "9999", "DECLINED 75"),
    ]
    issuer_cli(issuer, "account", "freeze", "--pan", LI_WEI)
    shown.append(visit(bank, BALANCE, "1234", "DECLINED 62"))

    rows = issuer.ledger.outbox()
    assert [r["kind"] for r in rows] == [
        "purchase", "balance_inquiry", "wrong_pin", "wrong_pin", "pin_tries_exceeded",
        "account_change", "frozen_card"]
    for row in rows:
        assert (row["channel"], row["destination"], row["card_last4"]) == (
            "sms", "138****5678", "0011")
        assert LI_WEI not in row["text"] and "1234" not in row["text"]
        assert bool(CJK.search(row["text"])) == (language == "zh"), row["text"]
        assert row["status"] == "sent"
    assert "200.00" in rows[0]["text"] and "DEMO SHOP" in rows[0]["text"]
    # the board says what was done: sent to the masked number, or a security alert
    for screen in shown[:4]:
        assert "SMS sent to" in screen.text and "138****5678" in screen.text, screen.text
    for screen in shown[4:]:
        assert "Security alert" in screen.text, screen.text
