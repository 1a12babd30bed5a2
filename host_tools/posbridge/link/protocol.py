"""Message types and bodies of the board-bridge protocol, host side (docs/protocol.md,
docs/protocol.cddl; the board's copy is firmware/messages.py, kept equal by a test).

SCHEMA is the one description of every message body on the host: the bridge, the
issuer, the logs and the tests build and read bodies through it by field name, and no
other module spells a key number. tests/host/test_schema.py holds it to protocol.cddl
and to the board's key constants."""
import re
from collections import namedtuple

from . import cbor_profile
from .pan import mask_pan

PROTOCOL_VERSION = 1
HEADER_SIZE = 4
TYPE_ACK = 0
FLAG_SYN = 0x01

HELLO = 0x01
HELLO_REPLY = 0x02
STATUS_REQUEST = 0x03
STATUS = 0x04
ERROR = 0x0F
BALANCE_REQUEST = 0x10
BALANCE_RESPONSE = 0x11
PURCHASE_REQUEST = 0x12
PURCHASE_RESPONSE = 0x13
REVERSAL_REQUEST = 0x14
REVERSAL_RESPONSE = 0x15

ERR_UNSUPPORTED_TYPE = 1
ERR_MALFORMED = 2
ERR_PROTOCOL_VERSION = 3
ERR_INTERNAL = 4
ERR_ISSUER_UNAVAILABLE = 5
ERR_SECURITY = 6
MAC_LEN = 8  # AES-CMAC truncated to 8 bytes (NIST SP 800-38B allows 64 bits)
# SHA-256 of the request's bytes, in every financial response (docs/protocol.md, MACs):
# whole, since a second preimage is searched offline, not guessed online as a MAC is
DIGEST_LEN = 32

TYPE_NAMES = {TYPE_ACK: "ACK", HELLO: "HELLO", HELLO_REPLY: "HELLO_REPLY",
              STATUS_REQUEST: "STATUS_REQUEST", STATUS: "STATUS", ERROR: "ERROR",
              BALANCE_REQUEST: "BALANCE_REQUEST", BALANCE_RESPONSE: "BALANCE_RESPONSE",
              PURCHASE_REQUEST: "PURCHASE_REQUEST", PURCHASE_RESPONSE: "PURCHASE_RESPONSE",
              REVERSAL_REQUEST: "REVERSAL_REQUEST", REVERSAL_RESPONSE: "REVERSAL_RESPONSE"}

# ---- the schema -------------------------------------------------------------------
#
# rule (its name in protocol.cddl) -> "type": the message type, None for a map that only
# sits inside a message; "fields": key -> (name, label, CBOR type, limits, presence, MAC)
#
#   name      the field's name in code and logs
#   label     its name in error texts, as the "field" column of docs/protocol.md
#   type      "uint", "int", "tstr", "bstr", "bool" or "map"
#   limits    uint/int: (low, high) of the value; tstr: (low, high) of its UTF-8 length,
#             or a regular expression it matches whole; bstr: (low, high) of its length;
#             map: the rule of its fields; None: no limit beyond the type
#   presence  REQUIRED or OPTIONAL
#   MAC       SIGNED: covered by the message's MAC; MAC: the MAC itself (over the map
#             without this key); None: the message carries no MAC, or the field is in a
#             nested map and covered with it
REQUIRED, OPTIONAL = "required", "optional"
SIGNED, MAC = "signed", "mac"

_TIME = (0, 2 ** 63 - 1)     # the issuer keeps times in signed 64-bit SQLite integers
_TRACE = (1, 999_999)
_KSN = (12, 12)              # initial key ID (8) and transaction counter (4), X9.24-3
_MAC = (MAC_LEN, MAC_LEN)
_DIGEST = (DIGEST_LEN, DIGEST_LEN)
_AMOUNT = (1, 999_999_999_999)      # minor units; ISO 8583 field 4 is n12
_CURRENCY = (1, 999)                # ISO 4217 numeric

_CARD_REQUEST = {   # balance-request, and the first keys of purchase-request
    1: ("terminal_id", "terminal id", "tstr", (1, 16), REQUIRED, SIGNED),
    2: ("trace", "trace number", "uint", _TRACE, REQUIRED, SIGNED),
    3: ("time", "time", "uint", _TIME, REQUIRED, SIGNED),
    4: ("card", "card", "map", "card", REQUIRED, SIGNED),
    # absent only for a contactless request at or below the issuer's contactless CVM
    # limit: the issuer refuses it otherwise (docs/protocol.md, "Contactless")
    5: ("pin_block", "PIN block", "bstr", (16, 16), OPTIONAL, SIGNED),
    6: ("ksn", "KSN", "bstr", _KSN, REQUIRED, SIGNED),
    7: ("mac", "MAC", "bstr", _MAC, REQUIRED, MAC),
    18: ("entry_mode", "entry mode", "uint", (1, 99), OPTIONAL, SIGNED),
    19: ("icc", "ICC data", "bstr", (1, 255), OPTIONAL, SIGNED),
}
_CARD_RESPONSE = {  # balance-response and purchase-response
    1: ("terminal_id", "terminal id", "tstr", (1, 16), REQUIRED, SIGNED),
    2: ("trace", "trace number", "uint", _TRACE, REQUIRED, SIGNED),
    3: ("response_code", "response code", "tstr", "[0-9]{2}", REQUIRED, SIGNED),
    4: ("approval_code", "approval code", "tstr", (6, 6), OPTIONAL, SIGNED),
    5: ("available", "available balance", "int", None, OPTIONAL, SIGNED),
    6: ("ledger", "ledger balance", "int", None, OPTIONAL, SIGNED),
    7: ("currency", "currency", "uint", _CURRENCY, OPTIONAL, SIGNED),
    8: ("notification", "notification", "map", "notification", REQUIRED, SIGNED),
    9: ("ksn", "KSN", "bstr", _KSN, REQUIRED, SIGNED),
    10: ("pin_tries_left", "PIN tries left", "uint", None, OPTIONAL, SIGNED),
    15: ("mac", "MAC", "bstr", _MAC, REQUIRED, MAC),
    17: ("request_digest", "request digest", "bstr", _DIGEST, REQUIRED, SIGNED),
    18: ("arpc", "ARPC", "bstr", (4, 8), OPTIONAL, SIGNED),
}

SCHEMA = {
    "hello": {"type": HELLO, "fields": {
        1: ("protocol", "protocol version", "uint", None, REQUIRED, None),
        2: ("firmware", "firmware version", "tstr", (1, 16), REQUIRED, None),
        3: ("terminal_id", "terminal id", "tstr", (1, 16), REQUIRED, None),
    }},
    "hello-reply": {"type": HELLO_REPLY, "fields": {
        1: ("protocol", "protocol version", "uint", None, REQUIRED, None),
        2: ("time", "time", "uint", _TIME, REQUIRED, None),
        3: ("bridge", "bridge version", "tstr", (1, 16), REQUIRED, None),
        # 4 (the bridge PC's UTC offset) is retired and not reused: the board keeps the
        # merchant's offset in its own record
    }},
    "status-request": {"type": STATUS_REQUEST, "fields": {}},
    # STATUS has two bodies: the board's and the bridge's
    "board-status": {"type": STATUS, "fields": {
        1: ("uptime_s", "uptime", "uint", None, REQUIRED, None),
        2: ("heap_free", "heap free", "uint", None, REQUIRED, None),
        3: ("state", "state", "tstr", (1, 16), REQUIRED, None),
        4: ("link", "link counters", "map", "link-counters", REQUIRED, None),
    }},
    "bridge-status": {"type": STATUS, "fields": {
        1: ("uptime_s", "uptime", "uint", None, REQUIRED, None),
        3: ("state", "state", "tstr", (1, 16), REQUIRED, None),
        5: ("issuer_online", "issuer reachable", "bool", None, OPTIONAL, None),
        6: ("time", "time", "uint", _TIME, REQUIRED, None),
    }},
    "link-counters": {"type": None, "fields": {
        1: ("tx", "tx", "uint", None, REQUIRED, None),
        2: ("rx", "rx", "uint", None, REQUIRED, None),
        3: ("retransmits", "retransmits", "uint", None, REQUIRED, None),
        4: ("duplicates", "duplicates", "uint", None, REQUIRED, None),
        5: ("crc_errors", "CRC errors", "uint", None, REQUIRED, None),
        6: ("framing_errors", "framing errors", "uint", None, REQUIRED, None),
        7: ("oversize", "oversize frames", "uint", None, REQUIRED, None),
        8: ("bad_header", "bad headers", "uint", None, REQUIRED, None),
        9: ("failures", "failures", "uint", None, REQUIRED, None),
        10: ("short_writes", "short writes", "uint", None, REQUIRED, None),
    }},
    "error": {"type": ERROR, "fields": {
        1: ("code", "code", "uint", (1, 6), REQUIRED, None),
        2: ("text", "text", "tstr", (0, 60), REQUIRED, None),
        3: ("about_type", "about", "uint", (0, 255), REQUIRED, None),
        4: ("trace", "trace number", "uint", _TRACE, OPTIONAL, None),
    }},
    "balance-request": {"type": BALANCE_REQUEST, "fields": _CARD_REQUEST},
    "purchase-request": {"type": PURCHASE_REQUEST, "fields": {
        **_CARD_REQUEST,
        8: ("amount", "amount", "uint", _AMOUNT, REQUIRED, SIGNED),
        9: ("currency", "currency", "uint", _CURRENCY, REQUIRED, SIGNED),
        10: ("merchant_id", "merchant id", "tstr", (1, 15), REQUIRED, SIGNED),
        11: ("merchant_name", "merchant name", "tstr", (1, 22), REQUIRED, SIGNED),
    }},
    "card": {"type": None, "fields": {
        1: ("pan", "PAN", "tstr", "[0-9]{12,19}", REQUIRED, None),
        2: ("expiry", "expiry", "tstr", "[0-9]{4}", REQUIRED, None),
        3: ("service_code", "service code", "tstr", "[0-9]{3}", REQUIRED, None),
    }},
    "balance-response": {"type": BALANCE_RESPONSE, "fields": _CARD_RESPONSE},
    "purchase-response": {"type": PURCHASE_RESPONSE, "fields": _CARD_RESPONSE},
    "notification": {"type": None, "fields": {
        1: ("status", "status", "uint", (1, 11), REQUIRED, None),
        2: ("channel", "channel", "tstr", "sms|app", OPTIONAL, None),
        3: ("destination", "destination", "tstr", (1, 24), OPTIONAL, None),
        4: ("detail", "detail", "tstr", (1, 40), OPTIONAL, None),
    }},
    "reversal-request": {"type": REVERSAL_REQUEST, "fields": {
        1: ("terminal_id", "terminal id", "tstr", (1, 16), REQUIRED, SIGNED),
        2: ("trace", "trace number", "uint", _TRACE, REQUIRED, SIGNED),
        3: ("time", "time", "uint", _TIME, REQUIRED, SIGNED),
        6: ("ksn", "KSN", "bstr", _KSN, REQUIRED, SIGNED),
        7: ("mac", "MAC", "bstr", _MAC, REQUIRED, MAC),
        8: ("amount", "amount", "uint", _AMOUNT, REQUIRED, SIGNED),
        9: ("currency", "currency", "uint", _CURRENCY, REQUIRED, SIGNED),
        12: ("original_trace", "original trace number", "uint", _TRACE, REQUIRED, SIGNED),
        13: ("original_ksn", "original KSN", "bstr", _KSN, REQUIRED, SIGNED),
        14: ("reason", "reason", "uint", (1, 4), REQUIRED, SIGNED),
    }},
    "reversal-response": {"type": REVERSAL_RESPONSE, "fields": {
        1: ("terminal_id", "terminal id", "tstr", (1, 16), REQUIRED, SIGNED),
        2: ("trace", "trace number", "uint", _TRACE, REQUIRED, SIGNED),
        3: ("response_code", "response code", "tstr", "[0-9]{2}", REQUIRED, SIGNED),
        8: ("notification", "notification", "map", "notification", OPTIONAL, SIGNED),
        9: ("ksn", "KSN", "bstr", _KSN, REQUIRED, SIGNED),
        12: ("original_trace", "original trace number", "uint", _TRACE, REQUIRED, SIGNED),
        15: ("mac", "MAC", "bstr", _MAC, REQUIRED, MAC),
        16: ("outcome", "outcome", "uint", (1, 3), OPTIONAL, SIGNED),
        17: ("request_digest", "request digest", "bstr", _DIGEST, REQUIRED, SIGNED),
    }},
}

# ---- what the code reads of it ----------------------------------------------------

Field = namedtuple("Field", "key name label type limits presence mac")

TABLES = {rule: {key: Field(key, *row) for key, row in spec["fields"].items()}
          for rule, spec in SCHEMA.items()}
# rule -> field name -> key
KEYS = {rule: {f.name: key for key, f in table.items()} for rule, table in TABLES.items()}
# message type -> its rules (two for STATUS)
RULES = {}
for _rule, _spec in SCHEMA.items():
    if _spec["type"] is not None:
        RULES[_spec["type"]] = RULES.get(_spec["type"], ()) + (_rule,)
# rule -> key -> field name
FIELD_NAMES = {rule: {key: f.name for key, f in table.items()}
               for rule, table in TABLES.items()}
LINK_COUNTERS = FIELD_NAMES["link-counters"]    # the board's link counters by key
# message type -> key -> field name, over all its rules: what the logs show
FIELDS = {mtype: {key: f.name for rule in rules for key, f in TABLES[rule].items()}
          for mtype, rules in RULES.items()}
# message type -> key of its MAC field, for the types that carry one
MAC_KEYS = {mtype: key for mtype, rules in RULES.items() for rule in rules
            for key, f in TABLES[rule].items() if f.mac == MAC}


def mac_key(mtype: int):
    """The key of the MAC in messages of type `mtype`, None if they carry no MAC."""
    return MAC_KEYS.get(mtype)


class SchemaError(ValueError):
    """A body that does not fit its rule. The text names the rule and the field (key and
    label) and never quotes a value: a request's fields include the card."""


_TYPE_WORDS = {"uint": "int", "int": "int", "tstr": "text", "bstr": "bytes",
               "bool": "bool", "map": "dict"}


def _has_type(field: Field, value) -> bool:
    if field.type in ("uint", "int"):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"tstr": str, "bstr": bytes, "bool": bool,
                              "map": dict}[field.type])


def _within(field: Field, value) -> bool:
    limits = field.limits
    if field.type == "uint" and value < 0:
        return False
    if limits is None or field.type == "bool":
        return True
    if isinstance(limits, str):                           # a tstr's pattern
        return re.fullmatch(limits, value) is not None
    if field.type == "tstr":
        value = len(value.encode())                       # CDDL's .size counts bytes
    elif field.type == "bstr":
        value = len(value)
    return limits[0] <= value <= limits[1]


def _read(rule: str, fields: dict, message: str, parent=None, need_mac=True) -> dict:
    """`fields` (keys as in `rule`) checked and keyed by name; `parent` is (key, label)
    of the map field they sit in, for the error texts; need_mac False while a body is
    built, before its MAC is known."""
    table = TABLES[rule]
    extra = [k for k in fields if k not in table]
    if extra:
        if parent is None:
            raise SchemaError(f"{message}: unknown field {sorted(extra, key=str)[0]!r}")
        raise SchemaError(f"{message}: field {parent[0]} ({parent[1]}) needs keys "
                          f"{', '.join(str(k) for k in sorted(table))} only")
    out = {}
    for key, field in sorted(table.items()):
        label = field.label if parent is None else f"{parent[1]} {field.label}"
        where = f"{message}: field {key} ({label})"
        if key not in fields:
            if field.presence == REQUIRED and (need_mac or field.mac != MAC):
                raise SchemaError(f"{where} is missing")
            continue
        value = fields[key]
        if not _has_type(field, value):
            raise SchemaError(f"{where} is not {_TYPE_WORDS[field.type]}")
        if field.type == "map":
            value = _read(field.limits, value, message, (key, label))
        elif not _within(field, value):
            raise SchemaError(f"{where} is out of range")
        out[field.name] = value
    return out


def decode(rule: str, body: bytes) -> dict:
    """The map in `body`, keys as sent; SchemaError if it is not profile CBOR or not a
    map. Its fields are not checked: parse does that."""
    try:
        fields = cbor_profile.decode(bytes(body))
    except cbor_profile.ProfileError as exc:
        raise SchemaError(f"{rule}: {exc}") from None
    if not isinstance(fields, dict):
        raise SchemaError(f"{rule}: not a map")
    return fields


def parse(rule: str, body) -> dict:
    """The fields of a `rule` body (CBOR bytes, or the map decode gave), checked against
    SCHEMA and keyed by name, nested maps too. SchemaError names the first field that
    does not fit: an unknown key first, then by key order."""
    fields = decode(rule, body) if isinstance(body, (bytes, bytearray, memoryview)) else body
    if not isinstance(fields, dict):
        raise SchemaError(f"{rule}: not a map")
    return _read(rule, fields, rule)


def build(rule: str, **values) -> dict:
    """A `rule` body as a map keyed by number, from its fields by name; an optional field
    given as None is left out, and so is the MAC, which the holder of the key adds
    (with_mac). SchemaError if a value does not fit."""
    keys = KEYS[rule]
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise SchemaError(f"{rule}: no field named {unknown[0]!r}")
    fields = {keys[name]: value for name, value in values.items() if value is not None}
    _read(rule, fields, rule, need_mac=False)
    return fields


def _mac_field(rule: str) -> int:
    keys = [key for key, f in TABLES[rule].items() if f.mac == MAC]
    if not keys:
        raise ValueError(f"{rule} carries no MAC")
    return keys[0]


def mac_input(rule: str, fields: dict) -> bytes:
    """What the MAC of a `rule` message covers: the encoded map without the MAC."""
    key = _mac_field(rule)
    return cbor_profile.encode({k: v for k, v in fields.items() if k != key})


def with_mac(rule: str, fields: dict, mac: bytes) -> bytes:
    """The encoded body: `fields` (from build) with `mac` under the rule's MAC key."""
    return cbor_profile.encode({**fields, _mac_field(rule): mac})


def field_or_none(rule: str, name: str, fields):
    """The value of field `name` in a decoded `rule` map if it is there and fits its
    rule, else None: for reading what can be read of a body that may be malformed."""
    key = KEYS[rule][name]
    if not isinstance(fields, dict) or key not in fields:
        return None
    field, value = TABLES[rule][key], fields[key]
    if field.type == "map" or not _has_type(field, value) or not _within(field, value):
        return None
    return value


# ---- for a person: logs and the monitor -------------------------------------------

# message type -> key -> the rule of the map in that field
_NESTED = {mtype: {key: f.limits for rule in rules for key, f in TABLES[rule].items()
                   if f.type == "map"}
           for mtype, rules in RULES.items()}


def _card(card) -> str:
    # the PAN masked, nothing else of the card: expiry and service code stay out of logs
    pan = card.get(KEYS["card"]["pan"], "") if isinstance(card, dict) else ""
    return f"card {mask_pan(pan)}"


def _hidden(value) -> str:
    return f"<{len(value)} bytes>" if isinstance(value, (bytes, bytearray)) else "<hidden>"


# how a field a person may read is shown: never a full PAN (PCI DSS 3.4: first six and
# last four digits at most), nothing of the card's track data, the PIN block and the ICC
# data (it may carry the track 2 equivalent, 57, and the PAN, 5A) as their length only
REDACT = {"pan": mask_pan, "card": _card, "pin_block": _hidden, "icc": _hidden}
# the byte strings a person may read in full: counters and checks, no secret among them
# (any other byte string, a field of a hostile frame too, shows as its length only)
SHOWN_BYTES = frozenset({"ksn", "original_ksn", "mac", "request_digest", "arpc"})


def _shown(name: str, value):
    if name in REDACT:
        return REDACT[name](value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex() if name in SHOWN_BYTES else _hidden(value)
    if isinstance(value, dict):     # a map where the schema has none: keys as they are
        return {k: _shown(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(name, v) for v in value]
    return value


def encode_body(fields: dict) -> bytes:
    return cbor_profile.encode(fields)


def decode_body(body: bytes) -> dict:
    """Raises cbor_profile.ProfileError (a ValueError) for a body outside the profile."""
    fields = cbor_profile.decode(body)
    if not isinstance(fields, dict):
        raise ValueError("message body is not a map")
    return fields


def named(mtype: int, fields: dict) -> dict:
    """Fields keyed by name, with anything sensitive masked."""
    names = FIELDS.get(mtype, {})
    out = {}
    for key, value in fields.items():
        name = names.get(key, str(key))
        nested = _NESTED.get(mtype, {}).get(key)
        if name not in REDACT and nested and isinstance(value, dict):
            inner = FIELD_NAMES[nested]
            value = {inner.get(k, str(k)): _shown(inner.get(k, str(k)), v)
                     for k, v in value.items()}
        else:
            value = _shown(name, value)
        out[name] = value
    return out


def describe(mtype: int, body: bytes) -> str:
    """One log line for a message: its type and named fields, or why it is unreadable."""
    name = TYPE_NAMES.get(mtype, f"TYPE_{mtype:#04x}")
    if mtype == TYPE_ACK:
        return name
    try:
        fields = named(mtype, decode_body(body))
    except ValueError as exc:
        return f"{name} <undecodable: {exc}> ({len(body)} bytes)"
    inner = " ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"{name} {inner}".rstrip()
