"""The board's own PN532 driver and EMV read (firmware/pn532.py, emv.py, under CPython)
against the virtual reader and card over a socketpair, as the emulator wires them, and
the ICC data they give verified at the issuer: the two sides of the contactless work
meet here before the end-to-end tests run them under MicroPython."""
import socket
import time
from types import SimpleNamespace

import pytest

from tests.cpython_shims import install

install()                           # the board's tick functions, before its modules load
import emv  # noqa: E402
import pn532  # noqa: E402
from posbridge.board.emv_card import EmvCard  # noqa: E402
from posbridge.board.pn532_sim import Pn532Simulator  # noqa: E402
from posbridge.issuer import codes  # noqa: E402
from posbridge.link.protocol import PURCHASE_REQUEST  # noqa: E402

from .test_contactless import MASTERCARD, mastercard  # noqa: E402,F401 (a fixture)
from .test_purchase import available  # noqa: E402

LI_WEI = "4761730000000011"


class SocketStream:
    """The board's end of the reader's stream: non-blocking, a read with nothing there
    gives None (as unix_main --nfc and UART(timeout=0) do)."""

    def __init__(self, sock):
        sock.setblocking(False)
        self.sock = sock

    def readinto(self, buf):
        try:
            return self.sock.recv_into(buf) or None
        except BlockingIOError:
            return None

    def write(self, data):
        try:
            return self.sock.send(bytes(data))
        except BlockingIOError:
            return None


@pytest.fixture
def reader():
    board, chip = socket.socketpair()
    sim = Pn532Simulator(chip).start()
    driver = pn532.PN532(SocketStream(board), clock=time.ticks_ms,
                         sleep=lambda ms: time.sleep(ms / 1000))
    yield sim, driver
    sim.stop()
    board.close()


def _tap_and_read(sim, driver, card, amount, cvm_required=False):
    sim.tap(card)
    deadline = time.monotonic() + 3
    tg = None
    while not tg and time.monotonic() < deadline:
        tg = driver.poll(time.ticks_ms())
        time.sleep(0.01)
    assert isinstance(tg, int) and tg > 0, tg
    # the board's read takes the date from its clock and the CVM rule from its terminal
    import wallclock
    wallclock.set_time(1795334400 - 8 * 3600, 480)
    terminal = SimpleNamespace(cvm_limit=amount - 1 if cvm_required else amount)
    try:
        return emv.read(driver, tg, amount, terminal)
    finally:
        driver.release(tg)


@pytest.mark.parametrize("pan, profile", [(LI_WEI, "visa-18"), ("4761730000000029", "visa-10"),
                                          ("6225880000000076", "unionpay-10"),
                                          (MASTERCARD, "mastercard-16"),
                                          (MASTERCARD, "mastercard-17")])
def test_the_boards_read_gives_icc_data_the_issuer_verifies(issuer, terminal, reader, pan,
                                                            profile, mastercard):
    sim, driver = reader
    card = EmvCard.personalise(issuer.ledger.keys, pan, expiry="3012", profile=profile)
    got_pan, expiry, service_code, masked, icc = _tap_and_read(sim, driver, card, 2500)
    assert (got_pan, expiry, service_code) == (pan, "3012", "201")
    assert masked == pan[:6] + "******" + pan[-4:]
    assert sim.commands[:2] == [0x14, 0x32] and sim.card is None      # released: lifted
    # a Mastercard gives its cryptogram at GENERATE AC: one APDU more
    assert card.apdus == (6 if profile.startswith("mastercard") else 5)
    before = available(issuer, pan)
    body, pending = terminal.purchase(pan, 2500, pin=None, expiry=expiry, entry_mode=7,
                                      icc=icc)
    fields = terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)
    assert fields[3] == codes.APPROVED and 18 in fields
    assert available(issuer, pan) == before - 2500
    # the same ICC data again: a replay
    body, pending = terminal.purchase(pan, 2500, pin=None, expiry=expiry, entry_mode=7,
                                      icc=icc)
    assert terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)[3] == \
        codes.CRYPTOGRAM_FAILURE


def test_a_card_leaving_mid_read_is_card_gone(issuer, reader):
    sim, driver = reader
    sim.remove_after(2)
    card = EmvCard.personalise(issuer.ledger.keys, LI_WEI, expiry="3012", profile="visa-18")
    with pytest.raises(pn532.CardGone):
        _tap_and_read(sim, driver, card, 100)


def test_a_card_without_ppse_is_not_supported(issuer, reader):
    sim, driver = reader
    card = EmvCard.personalise(issuer.ledger.keys, LI_WEI, expiry="3012", profile="visa-18",
                               faults=("ppse_6a82",))
    with pytest.raises(emv.CardError, match="Not supported"):
        _tap_and_read(sim, driver, card, 100)


@pytest.mark.parametrize("fault", ["truncated", "deep_nesting", "bad_pdol_length"])
def test_a_malformed_card_is_a_card_read_error(issuer, reader, fault):
    sim, driver = reader
    card = EmvCard.personalise(issuer.ledger.keys, LI_WEI, expiry="3012", profile="visa-18",
                               faults=(fault,))
    with pytest.raises(emv.CardError):
        _tap_and_read(sim, driver, card, 100)


def test_a_reader_answering_noise_is_a_reader_error(issuer, reader):
    sim, driver = reader
    card = EmvCard.personalise(issuer.ledger.keys, LI_WEI, expiry="3012", profile="visa-18")
    assert driver.poll(time.ticks_ms()) is None                  # woken, configured, no card
    sim.garbage()
    deadline = time.monotonic() + 3
    said = None
    while said is None and time.monotonic() < deadline:
        said = driver.poll(time.ticks_ms())
        time.sleep(0.01)
    assert said == "Reader error"
    sim.tap(card)                                                 # a sane reader again
    driver.deadline = 0
    tg = None
    deadline = time.monotonic() + 3
    while not tg and time.monotonic() < deadline:
        tg = driver.poll(time.ticks_ms())
        driver.deadline = 0
        time.sleep(0.01)
    assert tg == 1
