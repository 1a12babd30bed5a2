"""The ledger's file and schema, and what it keeps of PINs and requests;
card data checks, money formatting and PIN hashes."""
import datetime
import sqlite3

import pytest

from posbridge.link import cbor_profile
from posbridge.issuer import Ledger, LedgerError, cards, codes
from posbridge.issuer.cards import MAX_PIN_TRIES, check_pan, is_expired, parse_expiry
from posbridge.link.pan import luhn_check_digit, luhn_valid
from posbridge.issuer.demo_data import DEMO_BDK, DEMO_BDK_ID, DEMO_CARDS, DEMO_PIN
from posbridge.issuer.ledger import IDENTITY_WINDOW_S, SCHEMA_VERSION
from posbridge.issuer.money import currency_code, format_amount, parse_amount
from posbridge.issuer.pins import PinHashError, hash_pin, verify_pin
from posbridge.issuer.preferences import check_phone, mask_phone
from posbridge.link.protocol import BALANCE_REQUEST

from .test_balance_inquiry import LI_WEI, ask

# ---- file and schema ------------------------------------------------------------------


def test_create_makes_parent_directories(tmp_path):
    path = tmp_path / "a" / "b" / "issuer.sqlite"
    Ledger.create(path).close()
    ledger = Ledger.open(path)
    assert ledger.schema_version() == SCHEMA_VERSION
    tables = {r[0] for r in ledger._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "accounts", "cardholders", "alert_kinds", "cards",
            "transactions", "outbox"} <= tables
    ledger.close()


def test_open_of_a_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(LedgerError, match=r"no issuer database at .*: run posbridge issuer init"):
        Ledger.open(tmp_path / "none.sqlite")


def test_create_refuses_an_existing_file_unless_forced(db_path):
    with pytest.raises(LedgerError, match="exists: --force"):
        Ledger.create(db_path)
    ledger = Ledger.create(db_path, force=True)
    assert ledger.cards() == []
    ledger.close()


def test_not_a_database(tmp_path):
    path = tmp_path / "x.sqlite"
    path.write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="is not an issuer database"):
        Ledger.open(path)


def test_newer_schema_is_refused(db_path):
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger.open(db_path)


def test_reopening_keeps_the_schema(db_path):
    for _ in range(2):
        ledger = Ledger.open(db_path)
        assert ledger.schema_version() == SCHEMA_VERSION and len(ledger.cards()) == len(DEMO_CARDS)
        ledger.close()


def test_transaction_rolls_back_on_error(db_path):
    ledger = Ledger.open(db_path)
    card = ledger.card_by_pan(LI_WEI)
    with pytest.raises(RuntimeError):
        with ledger.transaction():
            cards.set_pin_tries(ledger, card.id, 0)
            raise RuntimeError
    assert ledger.card_by_pan(LI_WEI).pin_tries_left == MAX_PIN_TRIES
    ledger.close()


def test_a_trace_names_a_transaction_within_the_identity_window(db_path):
    ledger = Ledger.open(db_path)
    row = dict(terminal_id="T1", trace_number=5, digest="00", kind="balance_inquiry",
               card_id=None, response_code="14", response=b"x", request_time=0)
    with ledger.transaction():
        ledger.record_transaction(**row, now=1000, ksn="12345678901234560000000A")
    assert ledger.identity_in_use("T1", 5, 1000 + IDENTITY_WINDOW_S - 1)
    assert not ledger.identity_in_use("T1", 5, 1000 + IDENTITY_WINDOW_S)
    assert not ledger.identity_in_use("T1", 6, 1000)
    assert not ledger.identity_in_use("T2", 5, 1000)
    # once the board's trace has wrapped, the same trace is another transaction: the KSN
    # tells them apart
    with ledger.transaction():
        ledger.record_transaction(**row, now=1000 + IDENTITY_WINDOW_S,
                                  ksn="12345678901234560000FF00")
    assert ledger.find_by_ksn(bytes.fromhex("12345678901234560000000A")).id != \
        ledger.find_by_ksn("12345678901234560000ff00").id
    assert ledger.find_transaction("T1", 5).ksn == "12345678901234560000FF00"
    ledger.close()


# ---- what is kept ---------------------------------------------------------------------

def test_demo_data(db_path):
    ledger = Ledger.open(db_path)
    assert ledger.keys.has_key_set(DEMO_BDK_ID) and ledger.keys.has_key_set(DEMO_BDK_ID.lower())
    assert not ledger.keys.has_key_set("00000000")
    on_file = {c.pan: c for c in ledger.cards()}
    assert set(on_file) == {d.pan for d in DEMO_CARDS}
    for demo in DEMO_CARDS:
        card = on_file[demo.pan]
        assert luhn_valid(card.pan)
        assert (card.expiry, card.status, card.available, card.currency) == \
            (demo.expiry, demo.status, demo.balance, 156)
        assert card.holder.subscribed == demo.subscribed
        assert card.pin_reference.startswith("ibm3624$1$")
        assert card.pin_reference == ledger.keys.pin_reference(DEMO_PIN, card.pan)
    ledger.close()


def test_pin_column_holds_offsets_under_the_pvk(db_path):
    conn = sqlite3.connect(db_path)
    references = [r[0] for r in conn.execute("SELECT pin_reference FROM cards")]
    conn.close()
    for reference in references:
        scheme, index, offset = reference.split("$")
        assert (scheme, index, len(offset)) == ("ibm3624", "1", len(DEMO_PIN))
    # the same PIN gives another offset on another card (the PAN is the validation data)
    assert len(set(references)) > len(references) // 2


def test_journal_keeps_no_request(issuer, terminal, db_path):
    body, _ = terminal.request(LI_WEI)
    issuer.handle(BALANCE_REQUEST, body)
    raw = db_path.read_bytes()
    fields = cbor_profile.decode(body)
    assert fields[5] not in raw                     # the PIN block
    assert body not in raw
    conn = sqlite3.connect(db_path)
    [(digest,)] = conn.execute("SELECT request_digest FROM transactions")
    conn.close()
    assert len(digest) == 64


def test_add_card_refuses_a_pan_on_file_without_quoting_it(db_path):
    ledger = Ledger.open(db_path)
    with pytest.raises(LedgerError) as err:
        cards.add(ledger, pan=LI_WEI, pin="1234", expiry="3012", available=0, currency=156,
                  name="Dup")
    assert "476173******0011 is already on file" in str(err.value)
    assert LI_WEI not in str(err.value)
    ledger.close()


@pytest.mark.parametrize("field,value,message", [
    ("status", "stolen", "card status"), ("channel", "fax", "channel"),
    ("kinds", ("gossip",), "alert kind"),
])
def test_add_card_checks_its_choices(db_path, field, value, message):
    ledger = Ledger.open(db_path)
    with pytest.raises(LedgerError, match=message):
        cards.add(ledger, **{"pan": "4111111111111111", "pin": "1234", "expiry": "3012",
                             "available": 0, "currency": 156, "name": "N", field: value})
    ledger.close()


@pytest.mark.parametrize("bdk_id,bdk,message", [("1234", DEMO_BDK, "BDK id"),
                                                ("1234567G", DEMO_BDK, "BDK id"),
                                                ("12345678", DEMO_BDK[:8], "BDK: 16")])
def test_key_set_checks(db_path, bdk_id, bdk, message):
    ledger = Ledger.open(db_path)
    with pytest.raises(LedgerError, match=message):
        ledger.keys.import_bdk(bdk_id, bdk)
    ledger.close()


def _columns(ledger, table):
    return {r["name"] for r in ledger.execute(f"PRAGMA table_info({table})")}


def _tables(ledger):
    return {r[0] for r in ledger.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_new_database_has_the_whole_schema(tmp_path):
    ledger = Ledger.create(tmp_path / "new.sqlite")
    assert ledger.schema_version() == SCHEMA_VERSION == 7
    assert {"ledger_entries", "account_events", "alert_channels", "outbox", "terminals",
            "terminal_keys"} <= _tables(ledger)
    assert "key_sets" not in _tables(ledger)
    assert {"threshold", "large_amount_limit", "quiet_hours", "language"} <= \
        _columns(ledger, "cardholders")
    assert {"ksn", "merchant_name", "reversed_by"} <= _columns(ledger, "transactions")
    assert {"message_id", "language", "attempts"} <= _columns(ledger, "outbox")
    assert {"purchase_limit", "due_date"} <= _columns(ledger, "accounts")
    assert {"pan_lookup", "last_atc"} <= _columns(ledger, "cards")
    ledger.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_development_schema_is_refused_by_name(db_path, version):
    """Versions before 4 never left development: no migration, a message that says so."""
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE schema_version SET version = ?", (version,))
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match=rf"schema version {version} is from a development "
                                          r"build .* posbridge issuer init --force"):
        Ledger.open(db_path)


def test_tables_without_a_schema_version_are_not_an_issuer_database(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="is not an issuer database: it has no schema_version"):
        Ledger.open(path)


def test_demo_purchase_limits_and_thresholds(db_path):
    ledger = Ledger.open(db_path)
    cards = {c.pan: c for c in ledger.cards()}
    for demo in DEMO_CARDS:
        card = cards[demo.pan]
        assert (card.purchase_limit, card.account_purchase_limit, card.holder.threshold) == \
            (demo.purchase_limit, demo.account_purchase_limit, demo.threshold)
    assert cards["4761730000000011"].purchase_limit == 500000
    assert cards["4761730000000037"].account_purchase_limit == 200000
    assert cards["4761730000000037"].holder.threshold == 10000
    ledger.close()


def test_posting_needs_a_transaction(db_path):
    ledger = Ledger.open(db_path)
    card = ledger.card_by_pan(LI_WEI)
    with pytest.raises(LedgerError, match="a posting needs a transaction"):
        ledger.post(account_id=card.account_id, transaction_id=1, amount=-1)
    assert ledger.card_by_pan(LI_WEI).available == card.available
    ledger.close()


def test_journal_refuses_an_unknown_column(db_path):
    ledger = Ledger.open(db_path)
    with pytest.raises(LedgerError, match="no column 'pan'"):
        ledger.record_transaction(terminal_id="T1", trace_number=1, digest="00",
                                  kind="purchase", card_id=None, response_code="14",
                                  response=b"x", request_time=0, pan=LI_WEI)
    ledger.close()


def test_approved_inquiry_changes_no_balance(issuer, terminal):
    before = issuer.ledger.card_by_pan(LI_WEI)
    ask(issuer, terminal, LI_WEI)
    after = issuer.ledger.card_by_pan(LI_WEI)
    assert (after.available, after.ledger) == (before.available, before.ledger)


# ---- cards ----------------------------------------------------------------------------

@pytest.mark.parametrize("pan,valid", [
    ("4111111111111111", True), ("79927398713", True), ("5413330089020011", True),
    ("6011000990139424", True), ("4111111111111112", False), ("79927398710", False),
    ("0", False), ("4761730000000011", True), ("6225880000000076", True),
])
def test_luhn(pan, valid):
    assert luhn_valid(pan) == valid


def test_luhn_check_digit_of_every_demo_card():
    for card in DEMO_CARDS:
        assert luhn_check_digit(card.pan[:-1]) == card.pan[-1]


@pytest.mark.parametrize("pan,message", [
    ("41111111111", "12 to 19 digits"), ("4" * 20, "12 to 19 digits"),
    ("4111 1111 1111 1111", "12 to 19 digits"), ("4111111111111112", "Luhn"),
])
def test_check_pan(pan, message):
    with pytest.raises(ValueError, match=message) as err:
        check_pan(pan)
    assert "4111111111111112" not in str(err.value)


@pytest.mark.parametrize("yymm,ok", [("3012", (2030, 12)), ("0001", (2000, 1)),
                                     ("3013", None), ("3000", None), ("301", None),
                                     ("30a1", None)])
def test_parse_expiry(yymm, ok):
    if ok:
        assert parse_expiry(yymm) == ok
    else:
        with pytest.raises(ValueError, match="expiry"):
            parse_expiry(yymm)


# 2026-12-01 00:00 at UTC+8 (2026-11-30 16:00 UTC)
END_OF_NOV_UTC8 = int(datetime.datetime(2026, 11, 30, 16, 0,
                                        tzinfo=datetime.timezone.utc).timestamp())


@pytest.mark.parametrize("yymm,when,offset,expired", [
    ("2611", END_OF_NOV_UTC8 - 1, 480, False),
    ("2611", END_OF_NOV_UTC8, 480, True),
    ("2611", END_OF_NOV_UTC8, 0, False),
    ("2612", END_OF_NOV_UTC8, 480, False),
    ("2610", END_OF_NOV_UTC8, 0, True),
    ("9913", 0, 0, True),
])
def test_is_expired(yymm, when, offset, expired):
    assert is_expired(yymm, when, offset) == expired


@pytest.mark.parametrize("phone,masked", [
    ("13812345678", "138****5678"), ("+8613812345678", "+861******5678"),
    ("12345678", "123*5678"), ("1234567", "***4567"),
])
def test_mask_phone(phone, masked):
    assert mask_phone(check_phone(phone)) == masked


@pytest.mark.parametrize("phone", ["138 1234 5678", "123456", "abc", "+", "1" * 16])
def test_bad_phone(phone):
    with pytest.raises(ValueError, match="phone"):
        check_phone(phone)


# ---- money ----------------------------------------------------------------------------

@pytest.mark.parametrize("minor,currency,text", [
    (123456, 156, "CNY 1,234.56"), (0, 156, "CNY 0.00"), (5, 840, "USD 0.05"),
    (-1200, 156, "CNY -12.00"), (1234567, 392, "JPY 1,234,567"), (100, 999, "999 1.00"),
])
def test_format_amount(minor, currency, text):
    assert format_amount(minor, currency) == text


@pytest.mark.parametrize("text,currency,minor", [
    ("1234.56", 156, 123456), ("1,234.5", 156, 123450), ("0", 156, 0), ("12", 392, 12),
])
def test_parse_amount(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize("text,currency", [("1.234", 156), ("1.5", 392), ("abc", 156),
                                           ("nan", 156), ("inf", 156)])
def test_bad_amount(text, currency):
    with pytest.raises(ValueError, match="amount"):
        parse_amount(text, currency)


@pytest.mark.parametrize("text,code", [("CNY", 156), ("cny", 156), ("156", 156), ("840", 840)])
def test_currency_code(text, code):
    assert currency_code(text) == code


@pytest.mark.parametrize("text", ["XXX", "0", "1000", ""])
def test_bad_currency(text):
    with pytest.raises(ValueError, match="currency"):
        currency_code(text)


# ---- PIN hashes -----------------------------------------------------------------------

def test_pin_hash_verifies_only_its_pin():
    stored = hash_pin("1234")
    assert verify_pin("1234", stored)
    for other in ("1235", "12340", "4321", "0000"):
        assert not verify_pin(other, stored)
    assert hash_pin("1234") != stored               # salted


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "", "１２３４"])
def test_bad_pin_is_refused_without_quoting_it(pin):
    with pytest.raises(ValueError, match="4 to 12 digits") as err:
        hash_pin(pin)
    assert not pin or pin not in str(err.value)


@pytest.mark.parametrize("stored", ["1234", "bcrypt$1$2$3$00$00", "scrypt$x$8$1$00$00"])
def test_unreadable_hash(stored):
    with pytest.raises(PinHashError):
        verify_pin("1234", stored)


def test_codes_tables():
    for code in ("00", "14", "51", "54", "55", "62", "75", "91", "94", "96"):
        assert code in codes.RESPONSE_CODES
