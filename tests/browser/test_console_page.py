"""posbridge console driven in headless Chromium as a person would use it: a balance
inquiry and a purchase keyed through the page, a power cut in the middle of a purchase
and the reversal after it, the page reloaded and several tabs, hostile messages; and
nowhere in the page or its websocket traffic a full card number or a clear PIN.

The tests of this module share one console, in order (the board is one terminal);
each brings the board back to its idle screen first. Screenshots and the key-to-display
time go to tests/artifacts/browser/."""
import json

import pytest

from benchmarks import console_keys
from posbridge.issuer.demo_data import DEMO_CARDS, DEMO_PIN

from .conftest import Page

LI_WEI = 1                       # the cards' places in the page's list (the issuer's order)
WANG_FANG = 3
LI_WEI_PAN = DEMO_CARDS[0].pan
DISPLAY = "document.querySelector('#display-text').textContent"


def display(page) -> str:
    return page.evaluate(DISPLAY)


def wait_screen(page, text, timeout=20):
    page.wait_for_function(f"t => {DISPLAY}.includes(t)", arg=text, timeout=timeout * 1000)


def wait_phone(page, text, timeout=20):
    page.wait_for_function("t => document.querySelector('#alerts').textContent.includes(t)",
                           arg=text, timeout=timeout * 1000)


def wait_message(page, name, after=0, timeout=30):
    """Until the link panel lists more than `after` messages called `name`."""
    page.wait_for_function(
        "([n, after]) => document.querySelectorAll('#messages li.' + n).length > after",
        arg=[name, after], timeout=timeout * 1000)


def count_messages(page, name) -> int:
    return page.evaluate("n => document.querySelectorAll('#messages li.' + n).length", name)


def to_idle(page):
    """Cancel (or dismiss) whatever the board shows until it is idle."""
    page.wait_for_function("document.querySelector('#power').textContent.includes('on')",
                           timeout=30000)
    for _ in range(10):
        if "Insert card" in display(page):
            return
        page.click('#pinpad button[data-key="X"]')
        try:
            wait_screen(page, "Insert card", timeout=3)
        except Exception:  # noqa: BLE001 - a result screen wants Enter, not Cancel
            page.click('#pinpad button[data-key="E"]')
    wait_screen(page, "Insert card", timeout=10)


def swipe(page, card=LI_WEI):
    page.select_option("#card", str(card))
    page.click("#swipe")


def click_keys(page, keys):
    for key in keys:
        page.click(f'#pinpad button[data-key="{key}"]')


def shoot(page, artifacts, name):
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def balance_on_the_keyboard(page, card=LI_WEI, result="SMS sent to"):
    """A balance inquiry of `card` keyed on the keyboard, up to its result screen."""
    swipe(page, card)
    wait_screen(page, "1 Balance")
    page.keyboard.press("1")
    wait_screen(page, "Enter PIN")
    for digit in DEMO_PIN:
        page.keyboard.press(digit)
    wait_screen(page, "****")
    page.keyboard.press("Enter")
    wait_screen(page, result, timeout=30)


def purchase_on_the_buttons(page, amount_keys, amount_shown):
    """A purchase of the demo card keyed on the page's PIN pad, up to its approval."""
    swipe(page)
    wait_screen(page, "2 Purchase")
    click_keys(page, "2")
    wait_screen(page, "Enter amount")
    click_keys(page, amount_keys)
    wait_screen(page, amount_shown)
    click_keys(page, "E")
    wait_screen(page, "Enter PIN")
    click_keys(page, DEMO_PIN + "E")
    wait_screen(page, "SMS sent to", timeout=30)
    assert "APPROVED" in display(page).upper()


def test_the_page_shows_the_firmware_idle_screen(page, artifacts):
    wait_screen(page, "Insert card", timeout=30)
    # drawn from the frame buffer: the canvas is not blank
    lit = page.evaluate("""() => {
        const c = document.querySelector('#display');
        const d = c.getContext('2d').getImageData(0, 0, 128, 64).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 128) n++;
        return n; }""")
    assert lit > 100
    options = page.eval_on_selector_all("#card option", "os => os.map(o => o.textContent)")
    assert len(options) == len(DEMO_CARDS)
    assert options[0].startswith("476173******0011")
    assert page.is_enabled("#tap")       # the emulated board has its contactless reader


def test_balance_inquiry_keyed_on_the_keyboard(page, artifacts):
    to_idle(page)
    balance_on_the_keyboard(page)
    assert "12,345.67" in display(page)
    wait_phone(page, "balance inquiry")
    phone = page.inner_text("#phone")
    assert "Li Wei" in phone and "138****5678" in phone
    assert "Card ending 0011" in phone
    shoot(page, artifacts, "balance-inquiry")
    page.keyboard.press("Enter")
    wait_screen(page, "Insert card")


def test_the_phone_speaks_the_cardholders_language(page, artifacts):
    """Wang Fang reads Chinese, by app push: the alert is sent, or held in the outbox for
    her quiet hours (22:00-07:00 her time), in Chinese either way."""
    to_idle(page)
    balance_on_the_keyboard(page, WANG_FANG, result="BALANCE CNY")
    wait_phone(page, "您尾号0037的卡")
    assert "Wang Fang" in page.inner_text("#phone-owner")
    assert page.eval_on_selector_all("#alerts li", "ls => ls.map(l => l.lang)") == ["zh"]
    shoot(page, artifacts, "phone-in-chinese")
    page.keyboard.press("Enter")
    wait_screen(page, "Insert card")


def test_purchase_keyed_on_the_buttons(page, artifacts):
    to_idle(page)
    purchase_on_the_buttons(page, "1250", "12.50")
    wait_phone(page, "12.50")
    assert count_messages(page, "PURCHASE_RESPONSE") >= 1
    shoot(page, artifacts, "purchase")
    click_keys(page, "E")
    wait_screen(page, "Insert card")


def test_contactless_purchase_tapped_below_the_cvm_limit(page, artifacts):
    """Tapped, CNY 25.00: no PIN, the card's cryptogram checked by the issuer, the SMS."""
    to_idle(page)
    page.select_option("#card", str(LI_WEI))
    page.click("#tap")
    wait_screen(page, "CONTACTLESS")
    click_keys(page, "2")
    wait_screen(page, "Enter amount")
    click_keys(page, "2500E")
    wait_screen(page, "SMS sent to", timeout=30)
    assert "APPROVED" in display(page).upper()
    wait_phone(page, "25.00")
    # the request on the link panel: the ICC data (as its length), no PIN block
    request = page.evaluate(
        "() => [...document.querySelectorAll('#messages li.PURCHASE_REQUEST')].pop().textContent")
    assert "icc" in request and "pin_block" not in request, request
    shoot(page, artifacts, "contactless-purchase")
    click_keys(page, "E")
    wait_screen(page, "Insert card")


def test_a_bad_swipe_and_an_unavailable_issuer(page, artifacts):
    to_idle(page)
    page.click("#bad-swipe")
    wait_screen(page, "Read error")
    wait_screen(page, "Insert card")
    errors = count_messages(page, "ERROR")
    page.check("#fault-unavailable")
    swipe(page)
    wait_screen(page, "1 Balance")
    page.keyboard.press("1")
    wait_screen(page, "Enter PIN")
    page.keyboard.type(DEMO_PIN)
    page.keyboard.press("Enter")
    wait_screen(page, "unavailable", timeout=30)
    wait_message(page, "ERROR", after=errors)       # the bridge's ERROR: no issuer
    page.uncheck("#fault-unavailable")
    page.wait_for_function("!document.querySelector('#fault-unavailable').checked")
    shoot(page, artifacts, "issuer-unavailable")
    to_idle(page)


def test_power_cut_mid_purchase_shows_the_reversal(page, artifacts):
    to_idle(page)
    reversals = count_messages(page, "REVERSAL_RESPONSE")
    requests = count_messages(page, "PURCHASE_REQUEST")
    page.check("#fault-slow")            # the issuer answers late: the purchase is in flight
    swipe(page)
    wait_screen(page, "2 Purchase")
    click_keys(page, "2")
    wait_screen(page, "Enter amount")
    click_keys(page, "880E")
    wait_screen(page, "Enter PIN")
    click_keys(page, DEMO_PIN + "E")
    wait_message(page, "PURCHASE_REQUEST", after=requests)
    wait_phone(page, "8.80")             # charged: the issuer told the cardholder
    page.click("#power-cut")
    page.uncheck("#fault-slow")          # the reversal gets its answer at once
    page.wait_for_function("document.querySelector('#power').textContent.includes('off')",
                           timeout=10000)
    wait_message(page, "REVERSAL_RESPONSE", after=reversals, timeout=60)
    wait_phone(page, "credited back", timeout=30)
    wait_screen(page, "Insert card", timeout=30)
    shoot(page, artifacts, "power-cut-reversal")
    status = page.inner_text("#status-list")
    assert "boots: 2" in status


def test_reload_and_several_tabs(page, context, console, artifacts):
    to_idle(page)
    other = Page(context, console.url)
    try:
        wait_screen(other, "Insert card")
        # a key in one tab, the screen in both: the board is one
        swipe(other)
        wait_screen(page, "1 Balance")
        page.reload()
        wait_screen(page, "1 Balance")          # the reloaded page gets the screen it missed
        page.keyboard.press("Escape")
        wait_screen(other, "Insert card")
        other.page.close()
        page.wait_for_function(
            "document.querySelector('#status-list').textContent.includes('1')")
    finally:
        if not other.page.is_closed():
            other.page.close()
    swipe(page)
    wait_screen(page, "1 Balance")
    page.keyboard.press("Escape")
    wait_screen(page, "Insert card")


HOSTILE = [
    "not json", "[]", "null", "{}", '{"type": "key"}', '{"type": "key", "key": "Z"}',
    '{"type": "key", "key": "12"}', '{"type": "key", "key": 1}',
    '{"type": "swipe", "card": 999}', '{"type": "swipe", "card": "1"}',
    '{"type": "swipe", "card": true}', '{"type": "swipe", "card": 1.0}',
    '{"type": "faults", "slow": "yes"}', '{"type": "ping", "n": -1}',
    '{"type": "reboot"}', "[" * 400 + "]" * 400, json.dumps({"type": "key", "pad": "x" * 600}),
    '{"type": "swipe", "card": 1',
]


def test_hostile_page_messages_are_refused_and_change_nothing(page):
    to_idle(page)
    refused = page.evaluate("""async (bad) => {
        const ws = posConsole.ws, got = [];
        const listen = (ev) => { const m = JSON.parse(ev.data);
                                 if (m.type === 'refused') got.push(m.reason); };
        ws.addEventListener('message', listen);
        for (const b of bad) ws.send(b);
        ws.send(new Uint8Array([0xff, 0xfe, 0x00]));
        for (let i = 0; i < 100 && got.length < bad.length + 1; i++)
            await new Promise(r => setTimeout(r, 50));
        ws.removeEventListener('message', listen);
        return got; }""", HOSTILE)
    assert len(refused) == len(HOSTILE) + 1, refused
    assert all(r.startswith("refused: ") for r in refused)
    assert "Insert card" in display(page)
    swipe(page)                                  # the console still works
    wait_screen(page, "1 Balance")
    page.keyboard.press("Escape")
    wait_screen(page, "Insert card")


def test_key_to_display_time(page, artifacts):
    to_idle(page)
    result = console_keys.measure(page)
    path = artifacts / "key-to-display.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"key press to updated display: median {result['median_ms']:.1f} ms, slowest "
          f"{result['max_ms']:.1f} ms over {len(result['key_to_display_ms'])} presses; "
          f"websocket round trip {result['websocket_rtt_median_ms']:.1f} ms ({path})")
    assert len(result["key_to_display_ms"]) == 3 * len(console_keys.AMOUNT_KEYS)


def _strings(value, skip=("fb",)):
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in skip:
                yield from _strings(v, skip)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, skip)
    elif isinstance(value, str):
        yield value


def test_no_full_pan_or_clear_pin_in_the_page_or_its_traffic(page):
    """Over everything this module's page sent, received and shows (the tests above)."""
    pans = [card.pan for card in DEMO_CARDS]
    html = page.content() + page.inner_text("body")
    assert page.frames, "no websocket traffic recorded"
    for direction, text in page.frames:
        for pan in pans:
            assert pan not in text, f"full PAN in a {direction} frame"
    for pan in pans:
        assert pan not in html
    pin_blocks = []
    for direction, text in page.frames:
        try:
            msg = json.loads(text)
        except ValueError:
            continue                               # the hostile test's own garbage
        if not isinstance(msg, dict):
            continue
        if direction == "sent":
            assert DEMO_PIN not in text            # a PIN pad sends keys, never a PIN
        if msg.get("type") == "screen":
            assert DEMO_PIN not in "\n".join(msg["lines"])
        if msg.get("type") in ("message", "messages"):
            for m in msg.get("items", [msg]):
                if "pin_block" in m["fields"]:
                    pin_blocks.append(m["fields"]["pin_block"])
        if msg.get("type") == "phone":
            assert all(DEMO_PIN not in s for s in _strings(msg))
    assert pin_blocks and set(pin_blocks) == {"<16 bytes>"}, set(pin_blocks)
    assert LI_WEI_PAN[:6] + "******" + LI_WEI_PAN[-4:] in html   # masked, as PCI DSS 3.4
