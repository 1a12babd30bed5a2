"""Cardholder preferences stored and read back, a person's input for them, quiet hours,
and a database of schema version 1 brought up to date."""
import datetime
import sqlite3

import pytest

from posbridge.issuer import LedgerError, outbox, preferences
from posbridge.issuer.quiet_hours import QuietHours

from .test_balance_inquiry import LI_WEI, ZHANG_MIN, ask

TZ = datetime.timezone(datetime.timedelta(hours=8))


def local(hh, mm, day=22):
    return datetime.datetime(2026, 11, day, hh, mm, tzinfo=TZ)


# ---- quiet hours ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,start,end", [
    ("22:00-07:00", 1320, 420), ("7:05-9:00", 425, 540), (" 00:00-23:59 ", 0, 1439),
])
def test_quiet_hours_parse(text, start, end):
    quiet = QuietHours.parse(text)
    assert (quiet.start, quiet.end) == (start, end)
    assert QuietHours.parse(str(quiet)) == quiet


@pytest.mark.parametrize("text,message", [
    ("22-07", "HH:MM-HH:MM expected"), ("24:00-07:00", "hours 00..23"),
    ("22:60-07:00", "minutes 00..59"), ("07:00-07:00", "start and end are the same"),
    ("", "HH:MM-HH:MM expected"),
])
def test_bad_quiet_hours(text, message):
    with pytest.raises(ValueError, match=message):
        QuietHours.parse(text)


@pytest.mark.parametrize("window,time,inside,ends", [
    ("22:00-07:00", local(22, 0), True, local(7, 0, 23)),
    ("22:00-07:00", local(23, 59), True, local(7, 0, 23)),
    ("22:00-07:00", local(0, 0, 23), True, local(7, 0, 23)),
    ("22:00-07:00", local(6, 59, 23), True, local(7, 0, 23)),
    ("22:00-07:00", local(7, 0, 23), False, None),
    ("22:00-07:00", local(21, 59), False, None),
    ("12:00-14:00", local(12, 0), True, local(14, 0)),
    ("12:00-14:00", local(13, 30), True, local(14, 0)),
    ("12:00-14:00", local(14, 0), False, None),
    ("12:00-14:00", local(11, 59), False, None),
])
def test_quiet_hours_window(window, time, inside, ends):
    quiet = QuietHours.parse(window)
    assert quiet.contains(time) == inside
    if inside:
        assert quiet.end_after(time) == ends


# ---- stored and read back ------------------------------------------------------------------

def test_preferences_round_trip(issuer):
    ledger = issuer.ledger
    holder = ledger.card_on_file(LI_WEI).holder
    assert (holder.threshold, holder.quiet_hours, holder.language, holder.channels) == \
        (None, None, None, {})
    stored = preferences.update(
        ledger, holder.id, threshold=10000, large_amount_limit=500000,
        quiet_hours=QuietHours.parse("22:30-06:30"), language="zh",
        channels={"purchase": "app", "pin_tries_exceeded": "app"}, kinds=("purchase",),
        channel="app", phone="+8613900001111", subscribed=True)
    assert stored == ledger.card_on_file(LI_WEI).holder
    assert (stored.threshold, stored.large_amount_limit, str(stored.quiet_hours),
            stored.language, stored.kinds, stored.channel, stored.phone) == \
        (10000, 500000, "22:30-06:30", "zh", frozenset({"purchase"}), "app", "+8613900001111")
    assert stored.channels == {"pin_tries_exceeded": "app", "purchase": "app"}
    back = preferences.update(ledger, holder.id, threshold=None, quiet_hours=None,
                              language=None, channels={"purchase": None}, phone=None)
    assert (back.threshold, back.quiet_hours, back.language, back.phone) == (None,) * 4
    assert back.channels == {"pin_tries_exceeded": "app"}


def test_other_cardholders_are_untouched(issuer):
    before = issuer.ledger.card_on_file(ZHANG_MIN).holder
    preferences.update(issuer.ledger, issuer.ledger.card_on_file(LI_WEI).holder.id,
                       subscribed=False, kinds=())
    assert issuer.ledger.card_on_file(ZHANG_MIN).holder == before


@pytest.mark.parametrize("change,message", [
    ({"colour": "red"}, "not a preference: colour"),
    ({"channel": "fax"}, "channel 'fax'"),
    ({"kinds": ("purchase", "gossip")}, "alert kind 'gossip'"),
    ({"kinds": ("pin_tries_exceeded",)}, "alert kind 'pin_tries_exceeded'"),
    ({"channels": {"gossip": "sms"}}, "alert kind 'gossip'"),
    ({"channels": {"purchase": "fax"}}, "channel 'fax'"),
    ({"threshold": -1}, "threshold: must not be negative"),
    ({"language": "fr"}, "language 'fr'"),
    ({"phone": "12-34"}, "7 to 15 digits"),
])
def test_bad_preferences_change_nothing(issuer, change, message):
    holder = issuer.ledger.card_on_file(LI_WEI).holder
    with pytest.raises(ValueError, match=message):
        preferences.update(issuer.ledger, holder.id, **{"threshold": 1, **change})
    assert issuer.ledger.card_on_file(LI_WEI).holder == holder


@pytest.mark.parametrize("parse,text,value", [
    (preferences.parse_kinds, "purchase, wrong_pin", ("purchase", "wrong_pin")),
    (preferences.parse_kinds, "ALL", preferences.codes.ALERT_KINDS),
    (preferences.parse_kinds, "none", ()),
    (preferences.parse_channels, "purchase=app,wrong_pin=SMS", {"purchase": "app", "wrong_pin": "sms"}),
    (preferences.parse_channels, "frozen_card=default", {"frozen_card": None}),
    (preferences.parse_quiet_hours, "none", None),
    (preferences.parse_language, "ZH", "zh"),
    (preferences.parse_language, "default", None),
    (preferences.parse_phone, "none", None),
])
def test_parse_input(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize("parse,text,message", [
    (preferences.parse_kinds, "purchase,gossip", "alert kind 'gossip'"),
    (preferences.parse_channels, "purchase", "KIND=sms|app expected"),
    (preferences.parse_channels, "purchase=fax", "channel 'fax' for purchase"),
    (preferences.parse_channels, ",", "KIND=sms|app expected"),
    (preferences.parse_language, "fr", "language 'fr'"),
    (preferences.parse_quiet_hours, "late", "HH:MM-HH:MM expected"),
])
def test_bad_input(parse, text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


@pytest.mark.parametrize("text,value", [("100", 10000), ("0.50", 50), ("default", None),
                                        ("NONE", None)])
def test_parse_optional_amount(text, value):
    assert preferences.parse_optional_amount(text, 156, "threshold") == value


@pytest.mark.parametrize("text,message", [("-1", "threshold: must not be negative"),
                                          ("1.001", "threshold: amount '1.001'"),
                                          ("lots", "threshold: amount 'lots'")])
def test_bad_optional_amount(text, message):
    with pytest.raises(ValueError, match=message):
        preferences.parse_optional_amount(text, 156, "threshold")


def test_card_on_file_masks_an_unknown_pan(issuer):
    with pytest.raises(LedgerError, match=r"card 476173\*\*\*\*\*\*0094 is not on file"):
        issuer.ledger.card_on_file("4761730000000094")


def test_message_ids_are_unique(issuer, terminal):
    for _ in range(3):
        ask(issuer, terminal, LI_WEI)
    with pytest.raises(sqlite3.IntegrityError):
        with issuer.ledger.transaction():
            first = issuer.ledger.outbox()[0]
            outbox.add(issuer.ledger, transaction_id=None, cardholder_id=None, kind="x",
                       card_last4="0011", channel="sms", destination="d", text="t",
                       status="queued", message_id=first["message_id"])


def test_outbox_status_is_checked(issuer):
    with pytest.raises(LedgerError, match="outbox status 'delivered'"):
        outbox.add(issuer.ledger, transaction_id=None, cardholder_id=None, kind="x",
                   card_last4="0011", channel="sms", destination="d", text="t",
                   status="delivered")
