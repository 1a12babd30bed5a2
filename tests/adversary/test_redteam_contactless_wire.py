"""Red team on the contactless path's wires and records: a man in the middle on the ISO
8583 link rewriting field 55 (the ICC data) or field 22 (the entry mode) of a tapped
card's request, and what a tap leaves behind: the issuer's and the host's logs, the
monitor's and the link panel's view of the wire, the board's console and screens, the
issuer's database file. None may hold the full PAN, the track 2 equivalent or the raw
ICC data (docs/security.md, "A copied or counterfeit contactless card")."""
import asyncio
import logging

import cbor2
import pytest
from pyemv import tlv

from posbridge.issuer import codes
from posbridge.issuer.iso8583_server import IsoHost
from posbridge.link import iso8583_map as m
from posbridge.link import iso8583_spec as spec
from posbridge.link import protocol as p
from posbridge.link.readable import iso_message, link_frame
from posbridge.monitor import Monitor

from tests.adversary._issuer import (LI_WEI, db_path, demo_template,  # noqa: F401
                                     make_issuer, money, sleeps)
from tests.e2e.test_balance_inquiry import _payloads
from tests.e2e.wiretap import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD
from tests.host.emv_kernel import read_card
from tests.host.issuer.request_builder import TerminalRequestBuilder
from tests.host.issuer.test_contactless import card_of

CONTACTLESS = 7


def forms(data: bytes) -> "list[bytes]":
    return [bytes(data), bytes(data).hex().encode(), bytes(data).hex().upper().encode()]


def secrets_of(pan: str, track2: bytes, icc: bytes, arqc: bytes) -> "list[bytes]":
    """Every way the tap's card data could sit in a file or a line."""
    out = [pan.encode(), bytes.fromhex(pan), pan.encode("utf-16-le")]
    for data in (track2, icc, arqc):
        out += forms(data)
    return out


def assert_none_in(text_or_bytes, secrets, where):
    blob = text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode()
    for secret in secrets:
        found = secret in blob           # not `assert x not in blob`: pytest would print it
        assert not found, f"card data ({len(secret)} bytes) in {where}"


# ---- the ISO 8583 link --------------------------------------------------------------

@pytest.fixture
def host_issuer(make_issuer):
    return make_issuer()


def _iso_tap(issuer, icc_change=None):
    """A tapped card's purchase as ISO 8583 fields, as the bridge sends them, and the
    terminal that built it."""
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    read = read_card(card, 1000)
    icc = read["icc"]
    if icc_change:
        values = dict(tlv.decode(icc))
        values.update(icc_change)
        icc = tlv.encode(values)
    terminal = TerminalRequestBuilder()
    body, pending = terminal.purchase(LI_WEI, 1000, pin=None, entry_mode=CONTACTLESS,
                                      icc=icc)
    return m.request_to_iso(p.PURCHASE_REQUEST, body), terminal, pending, read, icc


def _answer(issuer, iso):
    host = IsoHost(issuer)
    return asyncio.run(host.respond(spec.pack(iso)))


def _last_atc(issuer):
    return issuer.ledger.execute("SELECT last_atc FROM cards WHERE pan_last4 = '0011'"
                                 ).fetchone()[0]


@pytest.mark.parametrize("name, change", [
    ("the ATC in field 55", lambda iso: iso.update(
        {"55": iso["55"].replace("9F360200", "9F3602FF", 1)})),
    ("the ARQC in field 55", lambda iso: iso.update(
        {"55": iso["55"][:6] + ("0" if iso["55"][6] != "0" else "1") + iso["55"][7:]})),
    ("field 55 dropped", lambda iso: iso.pop("55")),
    ("field 55 doubled", lambda iso: iso.update({"55": iso["55"] * 2})),
    ("field 22 made a swipe", lambda iso: iso.update({"22": "901"})),
    ("field 22 dropped", lambda iso: iso.pop("22")),
    ("field 2 another card", lambda iso: iso.update({"2": "4761730000000029"})),
    ("field 4 amount raised", lambda iso: iso.update({"4": "000000050000"})),
])
def test_a_tapped_request_rewritten_on_the_iso_link_is_refused_unpaid(host_issuer, name,
                                                                     change, caplog):
    iso, terminal, pending, read, icc = _iso_tap(host_issuer)
    before = money(host_issuer)
    change(iso)
    with caplog.at_level(logging.DEBUG):
        answer = _answer(host_issuer, iso)
    # the request's MAC no longer verifies: 63, before any ICC data is read
    assert answer is not None and answer["39"] == m.SECURITY_VIOLATION, answer.get("39")
    assert money(host_issuer)[0] == before[0] and money(host_issuer)[1] == before[1]
    assert _last_atc(host_issuer) is None
    assert_none_in(caplog.text, secrets_of(LI_WEI, read["values"].get("57", b"\xff" * 9),
                                           icc, read["values"]["9F26"]), "the host's log")


def test_the_tap_over_the_iso_link_logs_and_stores_no_card_data(host_issuer, caplog,
                                                                 location):
    # the terminal put the card's own PAN (5A) and track 2 equivalent (57) in its ICC
    # data, as field 55 may carry them: taken (they are the request's card), and kept
    # nowhere
    card = card_of(host_issuer, LI_WEI, "visa-18", "01")
    track2 = card.track2()
    iso, terminal, pending, read, icc = _iso_tap(host_issuer, {
        "5A": bytes.fromhex(LI_WEI), "57": track2})
    with caplog.at_level(logging.DEBUG):
        answer = _answer(host_issuer, iso)
        # and once more: the replay, refused 82, logged as a security event
        replay = _answer(host_issuer, m.request_to_iso(p.PURCHASE_REQUEST, terminal.purchase(
            LI_WEI, 1000, pin=None, entry_mode=CONTACTLESS, icc=icc)[0]))
    assert answer["39"] == codes.APPROVED and replay["39"] == codes.CRYPTOGRAM_FAILURE
    secrets = secrets_of(LI_WEI, track2, icc, read["values"]["9F26"])
    assert_none_in(caplog.text, secrets, "the issuer's and host's log")
    # what the monitor shows of the ISO messages both ways
    shown = repr(iso_message(spec.pack(iso))) + repr(iso_message(spec.pack(answer)))
    assert_none_in(shown, secrets, "the ISO monitor view")
    assert "<" in shown and "bytes>" in shown
    # the database: every column of every row, and the file itself
    host_issuer.ledger.close()
    database, _ = location
    raw = b"".join(path.read_bytes() for path in database.parent.iterdir()
                   if path.name.startswith(database.name))
    assert_none_in(raw, secrets, "the issuer's database file")


# ---- end to end: the real firmware, the bridge, the issuer ---------------------------

def test_a_tap_end_to_end_leaves_no_card_data_behind(bank, issuer, caplog, tmp_path):
    from tests.e2e.test_contactless import tap_visit
    caplog.set_level(logging.DEBUG)
    screen, _ = tap_visit(bank, issuer, LI_WEI, [("CONTACTLESS", "2"),
                                                 ("Enter amount", "2500E")])
    assert screen.lines[0] == "APPROVED"
    card = bank.emulator.card(LI_WEI)
    track2 = card.track2()
    wire = bank.tap.raw
    icc = arqc = None
    shown = []
    monitor = Monitor(lambda text: shown.append(str(text)))
    for direction in (BOARD_TO_BRIDGE, BRIDGE_TO_BOARD):
        for payload in _payloads(wire[direction]):
            shown.append(repr(link_frame(payload)))
            if payload[1] == p.PURCHASE_REQUEST:
                fields = cbor2.loads(payload[4:])
                icc = fields[19]
                arqc = dict(tlv.decode(icc))["9F26"]
        monitor.record(('{"ch": "serial", "src": "board", "dir": "%s", "hex": "%s"}'
                        % ("in" if direction == BOARD_TO_BRIDGE else "out",
                           bytes(wire[direction]).hex())).encode())
    assert icc is not None
    secrets = secrets_of(LI_WEI, track2, icc, arqc)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    logs += "\n".join(bank.emulator.stderr_lines)
    logs += "\n".join(s.text for s in bank.emulator.screens)
    logs += "\n".join(a["text"] + a["destination"] for a in issuer.ledger.outbox())
    assert_none_in(logs, secrets, "the logs, console, screens or alerts")
    assert "476173******0011" in logs or "****0011" in logs
    assert_none_in("\n".join(shown), secrets, "the link panel and the monitor")
    assert any("bytes>" in s or "<" in s for s in shown)
    journal = repr(issuer.ledger.journal())
    assert_none_in(journal, secrets, "the issuer's journal")
    issuer.ledger.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir()
                   if path.name.startswith("issuer.sqlite"))
    assert_none_in(raw, secrets, "the issuer's database file")


# ---- end to end: a hostile card on the board's reader --------------------------------

class HostileCard:
    """A demo card's chip whose answers `rewrite(command, answer)` changes on the way
    out: what a counterfeit or broken card can answer."""

    def __init__(self, inner, rewrite):
        self.inner, self.rewrite = inner, rewrite

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def tap(self):
        self.inner.tap()

    def apdu(self, command):
        return self.rewrite(bytes(command), self.inner.apdu(command))


def _long_iad(command, answer):
    if command[:2] != b"\x80\xa8" or answer[-2:] != b"\x90\x00":
        return answer
    values = dict(tlv.decode(answer[:-2])["77"])
    values["9F10"] = bytes(130)
    return tlv.encode({"77": values}) + b"\x90\x00"


def _afl_of_255_records(command, answer):
    if command[:2] == b"\x00\xb2" and answer[-2:] != b"\x90\x00":
        return bytes.fromhex("70035F2000 9000".replace(" ", ""))    # every record there
    if command[:2] != b"\x80\xa8" or answer[-2:] != b"\x90\x00":
        return answer
    values = dict(tlv.decode(answer[:-2])["77"])
    values["94"] = bytes([0x08, 1, 255, 0])
    return tlv.encode({"77": values}) + b"\x90\x00"


def _slow_gpo(command, answer):
    if command[:2] == b"\x80\xa8":
        import time
        time.sleep(3.5)                  # past the board's 3 s for an APDU
    return answer


@pytest.mark.parametrize("rewrite, shown", [
    (_long_iad, "Card read error"),
    (_afl_of_255_records, "Card read error"),          # after 16 records
    (_slow_gpo, "Reader error"),
], ids=["IAD of 130 bytes", "AFL of 255 records", "a card that stops answering"])
def test_a_hostile_card_ends_on_a_clear_screen_and_sends_nothing(bank, issuer, caplog,
                                                                 rewrite, shown):
    from tests.e2e.test_purchase import sent
    caplog.set_level(logging.DEBUG)
    em = bank.emulator
    em.card_keys = issuer.ledger.keys
    card = HostileCard(em.card(LI_WEI), rewrite)
    start = len(em.screens)
    em.reader.tap(card)
    em.answer_prompts([("CONTACTLESS", "2"), ("Enter amount", "2500E")], after=start,
                      timeout=15)
    screen = em.wait_for_screen("CONTACTLESS", timeout=30,
                                after=len(em.screens) - 1)
    end = em.wait_for_screen("Insert card", timeout=30, after=em.screens.index(screen))
    texts = [s.text for s in em.screens[start:em.screens.index(end) + 1]]
    assert any(shown in t or "tap again" in t or "Timed out" in t for t in texts), texts
    assert sent(bank, p.PURCHASE_REQUEST) == [] and issuer.ledger.journal() == []
    assert not any("Terminal error" in t for t in texts)
    logs = "\n".join(r.getMessage() for r in caplog.records) + "\n".join(em.stderr_lines)
    logs += "\n".join(texts)
    assert_none_in(logs, [LI_WEI.encode(), bytes.fromhex(LI_WEI)], "logs and screens")
