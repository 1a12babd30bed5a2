"""Red team: a hostile card on the board's reader. The board's own EMV read
(firmware/emv.py, through the PN532 driver and a chip scripted byte by byte: the fakes of
tests/firmware) against answers no honest card gives: an AFL of hundreds of records, a
PDOL asking for more than an APDU holds, TLV nested past any template, a PAN of odd
length or of non-digits, a track 2 equivalent that is not the PAN's, data objects too
long for the ICC data's one-byte lengths, a card that stops answering. Each must end in
CardError (the visit's "Card read error" / "Not supported" screen), CardGone or
ReaderError, never another exception, and never hand the visit ICC data a request
would carry as garbage. Nothing of the read prints a PAN."""
import contextlib
import io

import pytest
from pyemv import tlv as pyemv_tlv

from tests.cpython_shims import install

install()

import emv  # noqa: E402  (the board's modules, from firmware/)
from fwtest import FakeClock  # noqa: E402
from nfc_fakes import OK, PAN, VISA, FakeCard, FakeChip, ppse_answer  # noqa: E402
from nfc_fakes import tlv as t  # noqa: E402
from pn532 import PN532, CardGone, ReaderError  # noqa: E402

from posbridge.issuer.cryptogram import REQUIRED_TAGS, TAG_LENGTHS  # noqa: E402

NOW = 1795334400               # 2026-11-22 08:00 UTC


class Term:
    cvm_limit = 100000


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


def read(card, amount=1250, chip=None):
    import wallclock
    wallclock.set_time(NOW, 480)
    chip = chip or FakeChip(card)
    clock = FakeClock()
    reader = PN532(chip, clock=clock, sleep=clock.advance)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            return emv.read(reader, 1, amount, Term())
        finally:
            assert PAN not in out.getvalue()


def refused(card, **kw):
    """The read's end for a hostile card: one of the errors the visit shows on its
    screen, never another exception and never a card read."""
    with pytest.raises((emv.CardError, CardGone, ReaderError)) as err:
        read(card, **kw)
    return err.value


def gpo(*objects):
    return t("77", t("82", b"\x20\x00"), t("9F36", b"\x00\x07"),
             t("9F26", bytes(range(1, 9))), t("9F27", b"\x80"), *objects) + OK


def record(track2=None, pan=None, *extra):
    objects = []
    if track2 is not None:
        track2 = track2.replace(" ", "")
        objects.append(t("57", h(track2 + "F" * (len(track2) % 2))))
    if pan is not None:
        objects.append(t("5A", h(pan)))
    return t("70", *objects, *extra) + OK


def icc_fit_for_the_issuer(icc):
    """The ICC data a read handed over, parsed as the issuer parses it: one level of
    primitive objects, each with the length EMV gives it."""
    seen = []
    values = pyemv_tlv.decode(bytes(icc), convert=lambda tag, v: seen.append(tag) or bytes(v))
    assert len(seen) == len(set(seen))
    assert all(tag in values for tag in REQUIRED_TAGS)
    for tag, (low, high) in TAG_LENGTHS.items():
        if tag in values:
            assert low <= len(values[tag]) <= high, tag
    return values


# ---- the honest card, for the record ---------------------------------------------------

def test_an_honest_card_reads_and_its_icc_data_is_fit():
    pan, expiry, code, masked, icc = read(FakeCard())
    assert masked == "476173******0011" and pan == PAN
    values = icc_fit_for_the_issuer(icc)
    assert "57" not in values and "5A" not in values


# ---- records, DOLs, TLV ----------------------------------------------------------------

@pytest.mark.parametrize("afl", [
    h("08 01 FF 00"),                               # 255 records of SFI 1
    h("08 01 10 00") * 2,                           # 16 + 16
    h("08 01 01 00") * 60,                          # 60 entries of one record
    h("F8 01 FF 00"),                               # SFI 31 (reserved)
])
def test_an_afl_of_hundreds_of_records_stops_at_sixteen(afl):
    card = FakeCard({"80a80000": gpo(t("94", afl), t("9F10", h("06011203A00000")))})
    refused(card)
    reads = [a for a in card.seen if a[1] == 0xB2]
    assert len(reads) <= 16


@pytest.mark.parametrize("pdol", [
    h("9F02 FF"),                                   # one amount of 255 bytes
    h("DF8116 7F") * 3,                             # unknown tags, 381 bytes in all
    h("9F37 FF 9F02 FF"),
    h("9F"),                                        # a tag cut short
    h("9F02"),                                      # no length
    h("9F FF FF FF 01"),                            # a tag of four bytes
])
def test_a_pdol_asking_for_more_than_an_apdu_holds_is_refused(pdol):
    card = FakeCard({"00a4040007a0000000031010":
                     t("6F", t("84", VISA), t("A5", t("9F38", pdol))) + OK})
    refused(card)
    # no GET PROCESSING OPTIONS longer than an APDU was ever sent
    assert all(len(a) <= 261 for a in card.seen)


def test_tlv_nested_past_any_template_is_refused():
    inner = t("9F36", b"\x00\x01")
    for _ in range(12):
        inner = t("A5", inner)
    card = FakeCard({"00b2010c": t("70", inner) + OK})
    assert str(refused(card)) == "Card read error"


@pytest.mark.parametrize("answer", [
    h("70 82 FF FF 57") + OK,                       # a length past the end
    h("70 84 00 00 00 10") + OK,                    # a 4-byte length
    h("70 80 57 00 00 00") + OK,                    # indefinite length
    b"\x70" + OK,                                   # nothing but a tag
    OK,                                             # no data at all, 9000
    b"\x90",                                        # half a status word
])
def test_a_malformed_record_is_refused(answer):
    assert isinstance(refused(FakeCard({"00b2010c": answer})), emv.CardError)


def test_a_ppse_of_many_applications_is_not_supported_nor_a_crash():
    # more than a frame holds (the reader refuses it), and as many as one holds: none
    # is an application the terminal takes
    for count in (40, 8):
        card = FakeCard({"00a404000e": ppse_answer(*[(h("A0000000999999"), 1)] * count)})
        err = refused(card)
        assert isinstance(err, ReaderError) or str(err) == "Not supported"


# ---- the card number -------------------------------------------------------------------

@pytest.mark.parametrize("track2, pan", [
    ("4761730000000012 D2812201 0000000000000F", None),        # Luhn wrong
    ("47617300000 D2812201 0F", None),                          # 11 digits
    ("47617300000000000000 D2812201 0000000F", None),           # 20 digits
    ("4761730000A00011 D2812201 0000000000000F", None),         # a non-digit nibble
    ("47617300000F0011 D2812201 0000000000000F", None),         # F inside the PAN
    ("4761730000000011 D28122 0F", None),                       # no service code
    ("4761730000000011 0000000000000000000F", None),            # no separator
    ("D2812201 0000000000000F", None),                          # no PAN at all
    ("4761730000000011 D2812201 0F", "4761730000000029"),       # 5A another card
    ("4761730000000011 D2812201 0F", "476173000000001F"),       # 5A shorter
    ("4761730000000011 D2812201 0F", "476173000000001100"),     # 5A longer
    ("4761730000000011 D2812201 0F", "47617300000000AA"),       # 5A not digits
])
def test_a_card_number_of_the_wrong_form_or_disagreeing_is_refused(track2, pan):
    card = FakeCard({"00b2010c": record(track2.replace(" ", ""), pan)})
    assert str(refused(card)) == "Card read error"


def test_an_odd_length_pan_is_read_and_masked():
    # 15 digits, F padded (an American Express-like number, Luhn good)
    card = FakeCard({"00b2010c": record("378282246310005D28122010000F",
                                        "378282246310005F")})
    pan, expiry, code, masked, icc = read(card)
    assert (pan, expiry, code) == ("378282246310005", "2812", "201")
    assert masked == "378282*****0005" and len(masked) == 15
    assert b"\x37\x82\x82" not in icc


def test_a_track2_with_discretionary_data_past_fourteen_bytes_is_read():
    # a long track 2 equivalent (19 digits max before the separator, then YYMM, service
    # code, discretionary data): nothing after the service code is kept
    card = FakeCard({"00b2010c": record("4761730000000011D2812201" + "9" * 12 + "F")})
    pan, expiry, code, _, icc = read(card)
    assert (pan, expiry, code) == (PAN, "2812", "201")
    assert b"\x99\x99" not in icc


# ---- the cryptogram's objects ----------------------------------------------------------

_HEAP = ("left open: the board's read checks only that no object of the ICC data is over "
         "32 bytes (9F10's most, and a length its one-byte writer can say); a check of "
         "each tag's exact length made emv.py's code big enough that the 200-visit "
         "endurance run (64 KiB heap) failed visits with MemoryError. The issuer refuses "
         "these 30 (its TAG_LENGTHS), nothing is charged, but the request carries them")


def _gpo_with(**objects):
    values = {"82": b"\x20\x00", "94": h("08010100"), "9F36": b"\x00\x07",
              "9F26": bytes(8), "9F27": b"\x80", "9F10": h("06011203A00000")}
    values.update(objects)
    return t("77", *(t(tag, value) for tag, value in values.items())) + OK


@pytest.mark.parametrize("name, answer", [
    ("an IAD of 130 bytes", _gpo_with(**{"9F10": bytes(130)})),
    ("an IAD of 40 bytes", _gpo_with(**{"9F10": bytes(40)})),
    ("an empty IAD", _gpo_with(**{"9F10": b""})),
    ("an empty ARQC", _gpo_with(**{"9F26": b""})),
    pytest.param("a 3-byte ARQC", _gpo_with(**{"9F26": b"\x01\x02\x03"}),
                 marks=pytest.mark.xfail(strict=True, reason=_HEAP)),
    pytest.param("a 4-byte ATC", _gpo_with(**{"9F36": b"\x00\x00\x00\x07"}),
                 marks=pytest.mark.xfail(strict=True, reason=_HEAP)),
    pytest.param("a 2-byte CID", _gpo_with(**{"9F27": b"\x80\x00"}),
                 marks=pytest.mark.xfail(strict=True, reason=_HEAP)),
    pytest.param("a 1-byte AIP", _gpo_with(**{"82": b"\x20"}),
                 marks=pytest.mark.xfail(strict=True, reason=_HEAP)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_cryptogram_objects_of_the_wrong_length_never_become_icc_data(name, answer):
    # the ICC data writes each length in one byte: an object of 128 bytes or more
    # would be sent as BER-TLV that says something else; any length EMV does not give
    # the object is garbage the issuer can only refuse
    card = FakeCard({"80a80000": answer})
    try:
        got = read(card)
    except emv.CardError as exc:
        assert str(exc) == "Card read error"
        return
    icc_fit_for_the_issuer(got[4])       # else: garbage handed to the request


@pytest.mark.parametrize("aid", [
    VISA + bytes(40),
    pytest.param(VISA + bytes(20), marks=pytest.mark.xfail(strict=True, reason=_HEAP)),
    pytest.param(b"\xa0\x00", marks=pytest.mark.xfail(strict=True, reason=_HEAP)),
], ids=["47 bytes", "27 bytes", "2 bytes"])
def test_a_dedicated_file_name_of_another_length_never_becomes_icc_data(aid):
    # the AID (84) the card names in its FCI: 5 to 16 bytes
    card = FakeCard({"00a4040007a0000000031010":
                     t("6F", t("84", aid), t("A5", t("9F38", FakeCard.PDOL))) + OK})
    try:
        got = read(card)
    except emv.CardError as exc:
        assert str(exc) == "Card read error"
        return
    icc_fit_for_the_issuer(got[4])


# ---- a card that stops answering ------------------------------------------------------

@pytest.mark.parametrize("after", [0, 1, 2, 3])        # the read takes four APDUs
def test_a_card_that_stops_answering_is_card_gone(after):
    chip = FakeChip(FakeCard())
    chip.gone_after = after
    assert isinstance(refused(None, chip=chip), CardGone)


def test_a_reader_that_never_answers_is_a_reader_error():
    chip = FakeChip(FakeCard())
    chip.silent = True
    assert isinstance(refused(None, chip=chip), ReaderError)


def test_a_card_answering_61xx_forever_is_refused():
    class Chatty(FakeCard):
        def apdu(self, apdu):
            self.seen.append(bytes(apdu))
            return b"\x61\x10"
    card = Chatty()
    assert str(refused(card)) in ("Not supported", "Card read error")
    assert len(card.seen) <= 3
