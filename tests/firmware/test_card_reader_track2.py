# Card reader driver, the track side: ISO/IEC 7813 track 2 layout, ISO/IEC 7812-1 PAN
# length and Luhn digit, expiry against the clock, service code, PAN masking.
import card_reader
from card_reader import Card, mask_pan, luhn_ok, year_month, parse_track2
from cardtest import (JUL_2024, MID_JUN_2024, DISCRETIONARY, pan_of, frame, record, one,
                      reason)

GRACE = card_reader.EXPIRY_GRACE_S


def test_every_pan_length_12_to_19():
    for n in range(12, 20):
        pan = pan_of(n)
        card = one(record(pan))
        assert isinstance(card, Card) and card.pan == pan, (n, card)


def test_pan_length_outside_12_to_19_is_invalid():
    for n in (8, 11, 20):
        r = one(record(pan_of(n)))
        assert r.reason == "pan_length" and r.message == "Invalid card" and not r.retry


def test_missing_sentinels():
    pan = pan_of(16)
    assert reason(frame(("%s=2612201%s?" % (pan, DISCRETIONARY)).encode())) == "format"
    assert reason(frame((";%s=2612201%s" % (pan, DISCRETIONARY)).encode())) == "format"
    assert reason(frame(b"")) == "format"
    assert reason(frame(b";")) == "format"


def test_missing_separator_or_short_fields():
    pan = pan_of(16)
    assert reason(frame((";%s2612201?" % pan).encode())) == "format"
    assert reason(frame((";%s=261220?" % pan).encode())) == "format"   # 6 digits after '='
    assert isinstance(one(frame((";%s=2612201?" % pan).encode())), Card)  # no discretionary


def test_non_digits():
    pan = pan_of(16)
    assert reason(record(pan[:5] + "A" + pan[6:])) == "format"
    assert reason(record(pan, expiry="26O2")) == "format"
    assert reason(record(pan, service="2 1")) == "format"
    assert reason(record(pan, disc="12=34")) == "format"


def test_luhn_failure():
    pan = pan_of(16)
    wrong = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    r = one(record(wrong))
    assert r.reason == "luhn" and r.message == "Invalid card"


def test_luhn_known_numbers():
    for good in (b"79927398713", b"4111111111111111", b"5500005555555559", b"0"):
        assert luhn_ok(good, 0, len(good)), good
    for bad in (b"79927398710", b"4111111111111112", b"1"):
        assert not luhn_ok(bad, 0, len(bad)), bad


def test_expiry_month_boundary():
    pan = pan_of(16)
    # a card expiring in June 2024 is good through June 30 (with the UTC-12 grace)
    assert isinstance(one(record(pan, "2406"), MID_JUN_2024), Card)
    assert isinstance(one(record(pan, "2406"), JUL_2024 + GRACE - 1), Card)
    r = one(record(pan, "2406"), JUL_2024 + GRACE)
    assert r.reason == "expired" and r.message == "Card expired" and not r.retry
    assert isinstance(one(record(pan, "2407"), JUL_2024 + GRACE), Card)
    assert reason(record(pan, "2312"), MID_JUN_2024) == "expired"
    assert isinstance(one(record(pan, "2501"), MID_JUN_2024), Card)


def test_expiry_not_checked_when_clock_not_set():
    card = one(record(pan_of(16), "1901"), now=None)
    assert isinstance(card, Card) and card.expiry == "1901"


def test_bad_month():
    for expiry in ("2600", "2613", "2699"):
        assert reason(record(pan_of(16), expiry)) == "expiry", expiry
    assert reason(record(pan_of(16), "2613"), now=None) == "expiry"


def test_service_code_first_digit():
    pan = pan_of(16)
    for first in "12567":
        assert isinstance(one(record(pan, service=first + "01")), Card), first
    for first in "03489":
        r = one(record(pan, service=first + "01"))
        assert r.reason == "service_code" and r.message == "Invalid card", first


def test_mask_pan():
    assert mask_pan("4123456789012349") == "412345******2349"
    assert mask_pan("4123456789012345678") == "412345*********5678"
    assert mask_pan("4123456789012") == "412345***9012"
    assert mask_pan("412345678901") == "********8901"
    assert mask_pan("123") == "***"


def test_year_month():
    assert year_month(0) == (1970, 1)
    assert year_month(JUL_2024) == (2024, 7)
    assert year_month(JUL_2024 - 1) == (2024, 6)
    assert year_month(1709164800) == (2024, 2)        # 2024-02-29
    assert year_month(1709251200 - 1) == (2024, 2)
    assert year_month(1709251200) == (2024, 3)        # 2024-03-01
    assert year_month(951868800) == (2000, 3)          # 2000 is a leap year
    assert year_month(4107542400) == (2100, 3)         # 2100 is not
    assert year_month(1735689600) == (2025, 1)


def test_parse_track2_directly():
    pan = pan_of(16)
    track = bytearray((";%s=2612101%s?" % (pan, DISCRETIONARY)).encode())
    card = parse_track2(track, len(track), None)
    assert card.pan == pan and card.service_code == "101"
