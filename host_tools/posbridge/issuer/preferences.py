"""A cardholder's alert preferences: what notify.decide reads, how they are stored
(tables `cardholders`, `alert_kinds`, `alert_channels`: this module is their only
writer) and how a person's input for them is checked, the phone number's included.

Amounts (threshold, own large-amount limit) are minor units of the policy's currency;
None means "the bank's default". Quiet hours are a quiet_hours.QuietHours or None, the
language "en" / "zh" or None (the bank's), `channels` maps a kind to the channel chosen
for it (the others use `channel`).
"""
import re
from dataclasses import dataclass, field

from . import codes
from .errors import LedgerError
from .money import parse_amount
from .quiet_hours import QuietHours
from .templates import LANGUAGES

# what `posbridge issuer alerts set` and update() can change
FIELDS = ("subscribed", "phone", "channel", "kinds", "channels", "threshold",
          "large_amount_limit", "quiet_hours", "language")
ALL_KINDS = codes.ALERT_KINDS + codes.SECURITY_KINDS
_PHONE = re.compile(r"\+?[0-9]{7,15}")


@dataclass(frozen=True)
class Cardholder:
    id: int
    name: str
    phone: "str | None"
    subscribed: bool
    channel: str                         # the default channel
    kinds: frozenset                     # kinds chosen
    channels: dict = field(default_factory=dict)      # kind -> channel, where not default
    threshold: "int | None" = None
    large_amount_limit: "int | None" = None
    quiet_hours: "QuietHours | None" = None
    language: "str | None" = None


def load_cardholder(ledger, holder_id: int) -> "Cardholder | None":
    row = ledger.execute(
        "SELECT id, name, phone, subscribed, channel, threshold, large_amount_limit, "
        "quiet_hours, language FROM cardholders WHERE id = ?", (holder_id,)).fetchone()
    if row is None:
        return None
    kinds = frozenset(r["kind"] for r in ledger.execute(
        "SELECT kind FROM alert_kinds WHERE cardholder_id = ?", (holder_id,)))
    channels = {r["kind"]: r["channel"] for r in ledger.execute(
        "SELECT kind, channel FROM alert_channels WHERE cardholder_id = ? ORDER BY kind",
        (holder_id,))}
    return Cardholder(row["id"], row["name"], row["phone"], bool(row["subscribed"]),
                      row["channel"], kinds, channels, row["threshold"],
                      row["large_amount_limit"],
                      QuietHours.parse(row["quiet_hours"]) if row["quiet_hours"] else None,
                      row["language"])


def add_cardholder(ledger, *, name: str, phone=None, subscribed=False, channel="sms",
                   kinds=(), threshold=None) -> int:
    """A new cardholder (cards.add makes one for each card); returns the id. The
    kinds chosen are checked here, the phone by the caller (check_phone)."""
    if channel not in codes.CHANNELS:
        raise LedgerError(f"channel {channel!r}: one of {', '.join(codes.CHANNELS)}")
    for kind in kinds:
        if kind not in codes.ALERT_KINDS:
            raise LedgerError(f"alert kind {kind!r}: one of {', '.join(codes.ALERT_KINDS)}")
    with ledger.transaction():
        holder_id = ledger.execute(
            "INSERT INTO cardholders (name, phone, subscribed, channel, threshold) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, phone or None, int(bool(subscribed)), channel, threshold)).lastrowid
        for kind in dict.fromkeys(kinds):
            ledger.execute("INSERT INTO alert_kinds (cardholder_id, kind) VALUES (?, ?)",
                           (holder_id, kind))
    return holder_id


def update(ledger, holder_id: int, **changes) -> Cardholder:
    """Change the preferences named in `changes` (FIELDS, values already parsed: see
    the parse_* functions); returns the cardholder as stored. `channels` is merged into
    what is there (a kind mapped to None goes back to the default channel)."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a preference: {', '.join(sorted(unknown))}")
    columns = {}
    for name in ("subscribed", "phone", "channel", "threshold", "large_amount_limit",
                 "language"):
        if name in changes:
            columns[name] = _checked(name, changes[name])
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"]
        columns["quiet_hours"] = str(quiet) if quiet is not None else None
    with ledger.transaction():
        for name, value in columns.items():
            ledger.execute(f"UPDATE cardholders SET {name} = ? WHERE id = ?",  # noqa: S608
                           (value, holder_id))
        if "kinds" in changes:
            kinds = [_kind(k, codes.ALERT_KINDS) for k in dict.fromkeys(changes["kinds"])]
            ledger.execute("DELETE FROM alert_kinds WHERE cardholder_id = ?", (holder_id,))
            for kind in kinds:
                ledger.execute("INSERT INTO alert_kinds (cardholder_id, kind) VALUES (?, ?)",
                               (holder_id, kind))
        for kind, channel in (changes.get("channels") or {}).items():
            _kind(kind, ALL_KINDS)
            # replaced, not upserted: the same two statements on SQLite and PostgreSQL
            ledger.execute("DELETE FROM alert_channels WHERE cardholder_id = ? AND kind = ?",
                           (holder_id, kind))
            if channel is not None:
                ledger.execute("INSERT INTO alert_channels (cardholder_id, kind, channel) "
                               "VALUES (?, ?, ?)", (holder_id, kind, _checked("channel", channel)))
        return load_cardholder(ledger, holder_id)


def _checked(name, value):
    if name == "subscribed":
        return int(bool(value))
    if name == "phone":
        return check_phone(value) if value is not None else None
    if name == "channel" and value not in codes.CHANNELS:
        raise ValueError(f"channel {value!r}: one of {', '.join(codes.CHANNELS)}")
    if name in ("threshold", "large_amount_limit") and value is not None and value < 0:
        raise ValueError(f"{name.replace('_', ' ')}: must not be negative")
    if name == "language" and value is not None and value not in LANGUAGES:
        raise ValueError(f"language {value!r}: one of {', '.join(LANGUAGES)}")
    return value


def _kind(kind, allowed):
    if kind not in allowed:
        raise ValueError(f"alert kind {kind!r}: one of {', '.join(allowed)}")
    return kind


# ---- the phone number ------------------------------------------------------------------

def check_phone(phone: str) -> str:
    """A phone number: optional +, then 7 to 15 digits (E.164 length), no spaces."""
    if not _PHONE.fullmatch(phone):
        raise ValueError(f"phone {phone!r}: 7 to 15 digits expected, optionally after +")
    return phone


def mask_phone(phone: str) -> str:
    """First 3 and last 4 digits kept, the rest starred: 13812345678 -> 138****5678
    (a leading + is kept and not counted)."""
    plus = "+" if phone.startswith("+") else ""
    digits = phone[len(plus):]
    if len(digits) <= 7:
        return plus + "*" * (len(digits) - 4) + digits[-4:]
    return plus + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


# ---- a person's input -----------------------------------------------------------------

_DEFAULT_WORDS = ("none", "default", "")


def parse_kinds(text: str) -> tuple:
    """"purchase,wrong_pin" -> ("purchase", "wrong_pin"); "none" -> (); "all" -> all."""
    text = text.strip().lower()
    if text == "all":
        return codes.ALERT_KINDS
    if text in _DEFAULT_WORDS:
        return ()
    return tuple(_kind(k.strip(), codes.ALERT_KINDS) for k in text.split(",") if k.strip())


def parse_channels(text: str) -> dict:
    """"purchase=app,wrong_pin=sms" -> {kind: channel}; "kind=default" resets a kind."""
    out = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        kind, sep, channel = item.partition("=")
        if not sep:
            raise ValueError(f"channel {item!r}: KIND=sms|app expected, e.g. purchase=app")
        kind, channel = _kind(kind.strip(), ALL_KINDS), channel.strip().lower()
        if channel == "default":
            out[kind] = None
        elif channel in codes.CHANNELS:
            out[kind] = channel
        else:
            raise ValueError(f"channel {channel!r} for {kind}: one of "
                             f"{', '.join(codes.CHANNELS)}, default")
    if not out:
        raise ValueError("channel: KIND=sms|app expected, e.g. purchase=app")
    return out


def parse_optional_amount(text: str, currency: int, what: str) -> "int | None":
    """"100.00" -> 10000 minor units; "none" / "default" -> None (the bank's)."""
    if text.strip().lower() in _DEFAULT_WORDS:
        return None
    try:
        value = parse_amount(text, currency)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if value < 0:
        raise ValueError(f"{what}: must not be negative")
    return value


def parse_quiet_hours(text: str) -> "QuietHours | None":
    return None if text.strip().lower() in ("none", "off", "") else QuietHours.parse(text)


def parse_language(text: str) -> "str | None":
    text = text.strip().lower()
    if text in _DEFAULT_WORDS:
        return None
    if text not in LANGUAGES:
        raise ValueError(f"language {text!r}: one of {', '.join(LANGUAGES)}, default")
    return text


def parse_phone(text: str) -> "str | None":
    return None if text.strip().lower() in ("none", "") else check_phone(text.strip())
