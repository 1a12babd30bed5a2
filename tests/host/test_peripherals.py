"""The emulator's card reader and PIN pad (posbridge/board/peripherals.py) against the board's
drivers (firmware/card_reader.py, firmware/keypad.py, digit_entry.py): what the simulators send is what
the drivers accept, and no corruption of a record makes the driver raise or pass a card.
docs/peripherals.md is the protocol. The card numbers and PINs are made-up test data.
"""
import calendar
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posbridge.board import peripherals as sim
from posbridge.link.pan import luhn_check_digit

# The board's modules use MicroPython's tick functions (tests/cpython_shims.py).
from tests.cpython_shims import install as install_cpython_shims  # noqa: E402

install_cpython_shims()

import card_reader  # noqa: E402  (needs the shims above)
import digit_entry  # noqa: E402
import keypad  # noqa: E402

NOW = calendar.timegm((2024, 6, 15, 0, 0, 0))
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
PAN = "4000123456789017"


class BytesStream:
    """readinto() in chunks of `step`, None when empty, like UART(timeout=0)."""

    def __init__(self, data=b"", step=7):
        self.data = bytearray(data)
        self.step = step

    def feed(self, data):
        self.data.extend(data)

    def readinto(self, buf):
        if not self.data:
            return None
        n = min(len(buf), self.step, len(self.data))
        buf[:n] = self.data[:n]
        del self.data[:n]
        return n


def board_results(data, now=NOW, step=7):
    reader = card_reader.CardReader(BytesStream(data, step), now=lambda: now)
    out = []
    for _ in range(len(data) + 2):
        r = reader.poll()
        if r is not None:
            out.append(r)
    return out


def nonblocking_pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    return open(r, "rb", buffering=0), w  # readinto() gives None when empty


# ---- exact bytes ----------------------------------------------------------------

def test_card_record_bytes():
    rec = sim.card_record("4000123456789017", "2612", "201", "123")
    body = b";4000123456789017=2612201123?\x03"
    x = 0
    for b in body:
        x ^= b
    assert rec == b"\x02" + body + bytes((x,))
    assert sim.bad_read_record() == b"\x02E\x03" + bytes((ord("E") ^ 3,))


def test_luhn_check_digit_known_numbers():
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("411111111111111") == "1"
    assert luhn_check_digit(PAN[:-1]) == PAN[-1]


def test_corrupt_flips_one_bit():
    rec = sim.card_record(PAN, "2612")
    bad = sim.corrupt(rec)
    assert len(bad) == len(rec)
    assert sum(bin(a ^ b).count("1") for a, b in zip(rec, bad)) == 1
    assert sim.corrupt(rec, index=0, bit=2)[0] == 0x06


def test_pin_keys():
    assert sim.pin_keys("1234E") == b"1234E"
    assert sim.pin_keys("12BC9X") == b"12BC9X"
    with pytest.raises(ValueError):
        sim.pin_keys("12*4")


# ---- simulators into the board's drivers ------------------------------------------

def test_card_reader_sim_over_a_pipe_to_the_board_driver():
    rfile, w = nonblocking_pipe()
    try:
        reader = card_reader.CardReader(rfile, now=lambda: NOW)
        assert reader.poll() is None
        cards = sim.CardReaderSim(w)
        cards.swipe(PAN, "2612")
        cards.bad_read()
        cards.send(sim.corrupt(sim.card_record(PAN, "2612")))
        cards.swipe(PAN, "2312")
        got = [reader.poll() for _ in range(5)]
        assert got[0].pan == PAN and got[0].expiry == "2612"
        assert [r.reason for r in got[1:4]] == ["no_read", "lrc", "expired"]
        assert got[4] is None and cards.records_sent == 4
    finally:
        rfile.close()
        os.close(w)


def test_pin_pad_sim_over_a_pipe_to_the_board_driver():
    rfile, w = nonblocking_pipe()
    try:
        clock = [0]
        entry = digit_entry.PinEntry(keypad.KeyReader(rfile), lambda: clock[0])
        pad = sim.PinPadSim(w)
        pad.press("12")
        assert entry.poll() is None and entry.masked() == "**"
        pad.press("3E", interval_s=0.01)
        assert entry.poll() is None and entry.too_short
        pad.press("4E")
        assert entry.poll() == ("pin", bytearray(b"1234"))
        entry.restart()
        pad.press("99X")
        assert entry.poll() == digit_entry.CANCEL
    finally:
        rfile.close()
        os.close(w)


def test_simulators_write_to_file_objects():
    out = io.BytesIO()
    sim.CardReaderSim(out).swipe(PAN, "2612")
    sim.PinPadSim(out).press("0000E")
    data = out.getvalue()
    assert data.endswith(b"0000E") and board_results(data[:-5])[0].pan == PAN


# ---- properties --------------------------------------------------------------------

@st.composite
def good_cards(draw):
    length = draw(st.integers(12, 19))
    partial = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    pan = partial + luhn_check_digit(partial)
    expiry = "%02d%02d" % (draw(st.integers(24, 99)), draw(st.integers(1, 12)))
    if expiry < "2406":
        expiry = "2406"
    service = draw(st.sampled_from("12567")) + draw(st.text("0123456789", min_size=2,
                                                            max_size=2))
    room = card_reader.MAX_TRACK - len(sim.track2(pan, expiry, service, ""))
    disc = draw(st.text("0123456789", max_size=room))
    return pan, expiry, service, disc


@SETTINGS
@given(good_cards(), st.integers(1, 16))
def test_any_pan_with_its_luhn_digit_round_trips(card, step):
    pan, expiry, service, disc = card
    got = board_results(sim.card_record(pan, expiry, service, disc), step=step)
    assert len(got) == 1 and isinstance(got[0], card_reader.Card), got
    assert (got[0].pan, got[0].expiry, got[0].service_code) == (pan, expiry, service)


@SETTINGS
@given(good_cards(), st.data())
def test_any_single_bit_flip_is_rejected_never_raised(card, data):
    rec = sim.card_record(*card)
    index = data.draw(st.integers(0, len(rec) - 1))
    bit = data.draw(st.integers(0, 7))
    got = board_results(sim.corrupt(rec, index, bit))
    assert all(isinstance(r, card_reader.CardError) for r in got), got
    # and the reader is back in step: of two good swipes after it, the second is read
    # (the first can be lost if the flip moved the end of the record onto its STX)
    good = sim.card_record(PAN, "2612")
    got = board_results(sim.corrupt(rec, index, bit) + good + good)
    assert isinstance(got[-1], card_reader.Card) and got[-1].pan == PAN
    assert all(isinstance(r, card_reader.CardError) or r.pan == PAN for r in got)


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_or_give_a_bad_pan(noise):
    for r in board_results(noise):
        if isinstance(r, card_reader.Card):
            assert card_reader.luhn_ok(r.pan.encode(), 0, len(r.pan))
            assert 12 <= len(r.pan) <= 19
        else:
            assert isinstance(r, card_reader.CardError)


@SETTINGS
@given(st.text("0123456789", min_size=4, max_size=12), st.text("0123456789CB", max_size=8))
def test_any_pin_keyed_after_corrections_comes_out(pin, noise):
    # keys typed and cleared first, then the PIN: the PIN alone comes out
    keys = sim.pin_keys(noise + "C" + pin + "E")
    entry = digit_entry.PinEntry(keypad.KeyReader(BytesStream(keys, 3)), lambda: 0)
    assert entry.poll() == ("pin", bytearray(pin.encode()))
    assert entry.buf == bytearray(len(entry.buf))
