"""Cards: the checks of a card's data (PAN length and Luhn, link/pan.py; expiry YYMM)
and the only writes of the `cards` table: a card issued with its account and holder,
its PIN tries, its status, its PIN reference.

A card row holds its PAN encrypted, the keyed hash it is found by and its last 4 digits;
its PIN as a reference made by the key store (an IBM 3624 offset): `ledger.keys` does
every one of these, and the clear PAN and PIN exist only in memory.

The cards table has its own owner because four flows change a card row: issuing
(`posbridge issuer card add`, the demo set), PIN verification (service.py counts the
tries), a chip card's cryptogram (its ATC only moves forward) and account changes
(account_events.py freezes and unfreezes); here the status, tries and ATC are checked
in one place. Reading a card with its balances and holder is
Ledger.card_by_pan and its kin.

Check errors are ValueError with a message for a person, a refused write LedgerError;
none of them quotes a full PAN.
"""
import datetime

from ..link.pan import luhn_valid, mask_pan
from . import codes, preferences
from .errors import LedgerError

MAX_PIN_TRIES = 3


def check_pan(pan: str) -> str:
    """The PAN if it is 12 to 19 digits with a valid Luhn digit, else ValueError."""
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise ValueError("PAN: 12 to 19 digits expected")
    if not luhn_valid(pan):
        raise ValueError(f"PAN {mask_pan(pan)}: Luhn check digit is wrong")
    return pan


def parse_expiry(yymm: str):
    """(year, month) of a YYMM expiry (years 2000..2099), else ValueError."""
    if not (len(yymm) == 4 and yymm.isascii() and yymm.isdigit()):
        raise ValueError(f"expiry {yymm!r}: YYMM expected")
    month = int(yymm[2:])
    if not 1 <= month <= 12:
        raise ValueError(f"expiry {yymm}: month {month} is not 01..12")
    return 2000 + int(yymm[:2]), month


def is_expired(yymm: str, unix_time: int, utc_offset_min: int = 0) -> bool:
    """True once the expiry month is over at `unix_time` (local time at the offset): a
    card is valid to the last day of its expiry month. An impossible expiry is expired."""
    try:
        year, month = parse_expiry(yymm)
    except ValueError:
        return True
    local = (datetime.datetime.fromtimestamp(unix_time, datetime.timezone.utc)
             + datetime.timedelta(minutes=utc_offset_min))
    return (local.year, local.month) > (year, month)


# ---- the cards table ------------------------------------------------------------------

def add(ledger, *, pan: str, pin: str, expiry: str, available: int, currency: int,
        name: str, phone=None, subscribed=False, channel="sms", kinds=(), status="active",
        ledger_balance=None, credit_limit=0, purchase_limit=None,
        account_purchase_limit=None, threshold=None) -> int:
    """A card with its own new account (Ledger.open_account) and cardholder
    (preferences.add_cardholder), in one transaction; returns the card's id. The caller
    checks PAN, expiry and phone. `threshold`: the cardholder's
    purchase alert threshold, minor units (None: the bank's default); the other
    preferences are set with preferences.update. `pin` goes to the key store, which
    gives the reference kept on file."""
    _check_status(status)
    keys = ledger.keys
    lookup = keys.pan_lookup(pan)
    pin_reference = keys.pin_reference(pin, pan)
    with ledger.transaction():
        if ledger.execute("SELECT 1 FROM cards WHERE pan_lookup = ?", (lookup,)).fetchone():
            raise LedgerError(f"card {mask_pan(pan)} is already on file")
        account_id = ledger.open_account(
            currency=currency, available=available, ledger_balance=ledger_balance,
            credit_limit=credit_limit, purchase_limit=account_purchase_limit)
        holder_id = preferences.add_cardholder(
            ledger, name=name, phone=phone, subscribed=subscribed, channel=channel,
            kinds=kinds, threshold=threshold)
        return ledger.execute(
            "INSERT INTO cards (pan_lookup, pan_encrypted, pan_last4, expiry, status, "
            "pin_reference, pin_tries_left, account_id, cardholder_id, purchase_limit) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (lookup, keys.encrypt_pan(pan), pan[-4:], expiry, status, pin_reference,
             MAX_PIN_TRIES, account_id, holder_id, purchase_limit)).lastrowid


def set_pin_tries(ledger, card_id: int, tries_left: int):
    if not 0 <= tries_left <= MAX_PIN_TRIES:
        raise LedgerError(f"PIN tries: 0 to {MAX_PIN_TRIES}, not {tries_left}")
    ledger.execute("UPDATE cards SET pin_tries_left = ? WHERE id = ?", (tries_left, card_id))


def advance_atc(ledger, card_id: int, atc: int) -> bool:
    """Record `atc`, the application transaction counter of a cryptogram the issuer
    verified, if it is above every one accepted from the card before; False (nothing
    written) for an ATC that does not move forward: a replayed or stale cryptogram.
    One statement, so that two requests with the same ATC cannot both pass."""
    if not 0 <= atc <= 0xFFFF:
        raise LedgerError(f"ATC: 0 to 65535, not {atc}")
    return ledger.execute(
        "UPDATE cards SET last_atc = ? WHERE id = ? AND (last_atc IS NULL OR last_atc < ?)",
        (atc, card_id, atc)).rowcount == 1


def set_pin_reference(ledger, card_id: int, reference: str):
    """A new PIN reference from the key store (a sealed old hash replaced by its offset
    once the card's PIN was right)."""
    ledger.execute("UPDATE cards SET pin_reference = ? WHERE id = ?", (reference, card_id))


def copy_version_5_cards(ledger):
    """Migration to schema version 6 (Ledger._to_version_6): every row of the old table
    `cards_v5` into the new `cards`, same id, the PAN encrypted with its keyed hash and
    last 4 digits, the scrypt PIN hash sealed under the data key."""
    keys = ledger.keys
    for row in ledger.execute(
            "SELECT id, pan, expiry, status, pin_hash, pin_tries_left, account_id, "
            "cardholder_id, purchase_limit FROM cards_v5 ORDER BY id").fetchall():
        pan = row["pan"]
        ledger.execute(
            "INSERT INTO cards (id, pan_lookup, pan_encrypted, pan_last4, expiry, status, "
            "pin_reference, pin_tries_left, account_id, cardholder_id, purchase_limit) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row["id"], keys.pan_lookup(pan), keys.encrypt_pan(pan), pan[-4:],
             row["expiry"], row["status"], keys.seal_pin_hash(row["pin_hash"]),
             row["pin_tries_left"], row["account_id"], row["cardholder_id"],
             row["purchase_limit"]))


def set_status(ledger, card_id: int, status: str):
    """active, frozen or blocked (stop-payment); account_events.py says when and why."""
    _check_status(status)
    ledger.execute("UPDATE cards SET status = ? WHERE id = ?", (status, card_id))


def _check_status(status: str):
    if status not in codes.CARD_STATUSES:
        raise LedgerError(f"card status {status!r}: one of {', '.join(codes.CARD_STATUSES)}")
