"""posbridge console --upstream: the page's terminal against `posbridge issuer serve` in
a process of its own, over ISO 8583. A balance inquiry and a purchase keyed through the
page are answered by that host, on its database (the purchase charged there), the phone
shows the host's alert, and the page's "issuer unavailable" switch acts on the link."""
import pytest

from posbridge.issuer import Ledger
from posbridge.issuer.demo_data import DEMO_CARDS, DEMO_PIN, load_demo

from tests.iso8583_net import HostProcess

from .console_process import ConsoleProcess, alive
from .test_console_page import (balance_on_the_keyboard, click_keys, count_messages, display,
                                purchase_on_the_buttons, shoot, swipe, to_idle, wait_message,
                                wait_phone, wait_screen)

LI_WEI_PAN = DEMO_CARDS[0].pan


@pytest.fixture(scope="module")
def host_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("iso-host") / "issuer.sqlite"
    ledger = Ledger.create(path)
    load_demo(ledger)
    ledger.close()
    return path


@pytest.fixture(scope="module")
def iso_host(host_db):
    host = HostProcess(host_db)
    yield host
    host.close()


@pytest.fixture(scope="module")
def console(browser, iso_host, host_db):
    c = ConsoleProcess("--upstream", f"iso8583://127.0.0.1:{iso_host.port}",
                       "--issuer-db", str(host_db))
    yield c
    boards = c.board_pids()
    code = c.stop()
    assert code == 0, c.output
    assert not [pid for pid in boards if alive(pid)], "the board outlived the console"


def _available(host_db, pan):
    ledger = Ledger.open(host_db)
    try:
        return ledger.card_by_pan(pan).available
    finally:
        ledger.close()


def test_balance_and_purchase_answered_by_the_iso8583_host(page, console, host_db, artifacts):
    assert "the ISO 8583 host at 127.0.0.1" in console.output
    wait_screen(page, "Insert card", timeout=30)
    to_idle(page)
    balance_on_the_keyboard(page)
    assert "12,345.67" in display(page)
    wait_phone(page, "balance inquiry")
    page.keyboard.press("Enter")
    wait_screen(page, "Insert card")
    before = _available(host_db, LI_WEI_PAN)
    purchase_on_the_buttons(page, "1250", "12.50")
    wait_phone(page, "12.50")
    assert count_messages(page, "PURCHASE_RESPONSE") >= 1
    assert _available(host_db, LI_WEI_PAN) == before - 1250     # charged by the host
    shoot(page, artifacts, "upstream-purchase")
    click_keys(page, "E")
    wait_screen(page, "Insert card")


def test_the_unavailable_switch_on_the_upstream(page):
    to_idle(page)
    errors = count_messages(page, "ERROR")
    page.check("#fault-unavailable")
    swipe(page)
    wait_screen(page, "1 Balance")
    page.keyboard.press("1")
    wait_screen(page, "Enter PIN")
    page.keyboard.type(DEMO_PIN)
    page.keyboard.press("Enter")
    wait_screen(page, "unavailable", timeout=30)
    wait_message(page, "ERROR", after=errors)
    page.uncheck("#fault-unavailable")
    page.wait_for_function("!document.querySelector('#fault-unavailable').checked")
    to_idle(page)
    html = page.content() + page.inner_text("body")
    assert LI_WEI_PAN not in html and all(LI_WEI_PAN not in t for _, t in page.frames)
