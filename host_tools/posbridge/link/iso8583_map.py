"""CBOR bodies <-> ISO 8583 fields, lossless, both ways, from one table per message
(docs/iso8583.md, "Mapping"). The bridge and the issuer host both use it.

The board's MAC covers the deterministic CBOR of its request; the issuer's MAC covers
that of its response. Each end rebuilds the exact body from the ISO fields, so a MAC
crosses the translation unchanged (ISO field 64, or 128 when the message has a
secondary bitmap) and still verifies at the other end. For that the mapping is
lossless: every CBOR field has one place among the ISO fields and comes back equal;
a value that could not come back equal (a terminal id over 8 characters, non-ASCII in
an ans field, a balance beyond 12 digits) is refused (MappingError), never altered.
`request_to_iso` and `response_to_iso` check it on each message by mapping back.

Fields of the ISO message that are not a CBOR field are derived from CBOR fields (the
transmission time from the terminal's time, the retrieval reference number from the
time and the trace, the processing code from the message type) and must be present and
equal to what those give: a message whose derived field is changed is a format error,
as is one with a field its table does not know. So every field of a request is either
covered by the MAC or checked against fields that are."""
import hashlib
import time as _time

from . import cbor_profile, protocol
from . import iso8583_spec as spec
from .iso8583_codecs import (Arpc, Binary, Digits, EntryMode, MappingError, MerchantName,
                             Number, OriginalData, Text)


# message type (link) <-> MTI (ISO 8583), and the schema rule of each
MTI = {protocol.BALANCE_REQUEST: spec.BALANCE_INQUIRY,
       protocol.BALANCE_RESPONSE: spec.BALANCE_INQUIRY_RESPONSE,
       protocol.PURCHASE_REQUEST: spec.PURCHASE,
       protocol.PURCHASE_RESPONSE: spec.PURCHASE_RESPONSE,
       protocol.REVERSAL_REQUEST: spec.REVERSAL,
       protocol.REVERSAL_RESPONSE: spec.REVERSAL_RESPONSE}
MTYPE = {mti: mtype for mtype, mti in MTI.items()}
RULE = {mtype: protocol.RULES[mtype][0] for mtype in MTI}
REQUEST_MTIS = (spec.BALANCE_INQUIRY, spec.PURCHASE, spec.REVERSAL)
RESPONSE_MTI = {spec.BALANCE_INQUIRY: spec.BALANCE_INQUIRY_RESPONSE,
                spec.PURCHASE: spec.PURCHASE_RESPONSE,
                spec.REVERSAL: spec.REVERSAL_RESPONSE,
                spec.NETWORK: spec.NETWORK_RESPONSE}

# ISO 8583:1987 response codes the host answers with when it has no MAC'd answer
FORMAT_ERROR = "30"
SECURITY_VIOLATION = "63"
ISSUER_INOPERATIVE = "91"
SYSTEM_MALFUNCTION = "96"
APPROVED = "00"

# ---- rows: where each CBOR field goes --------------------------------------------


def _key_path(rule: str, names) -> tuple:
    """The CBOR keys of a field named by its path of names in `rule`: ("card", "pan")
    is the PAN in the card map (the numbers are the schema's, protocol.py)."""
    keys = []
    for name in names:
        key = protocol.KEYS[rule][name]
        keys.append(key)
        rule = protocol.TABLES[rule][key].limits
    return tuple(keys)


class Row:
    """A CBOR field, by its path of names, <-> one ISO field."""

    def __init__(self, names, field, codec):
        self.names, self.field, self.codec = names, str(field), codec
        self.fields = (self.field,)
        self.path = None

    def bind(self, rule):
        row = Row(self.names, self.field, self.codec)
        row.path = _key_path(rule, self.names)
        return row

    def to_iso(self, body: dict, iso: dict):
        value = _get(body, self.path)
        if value is not None:
            try:
                iso[self.field] = self.codec.to_iso(value)
            except MappingError as exc:
                raise MappingError(f"field {self.field}: {exc}") from None

    def from_iso(self, iso: dict, body: dict):
        if self.field in iso:
            try:
                _put(body, self.path, self.codec.from_iso(iso[self.field]))
            except MappingError as exc:
                raise MappingError(f"field {self.field}: {exc}") from None


def _get(body, path):
    for key in path:
        if not isinstance(body, dict) or key not in body:
            return None
        body = body[key]
    return body


def _put(body, path, value):
    for key in path[:-1]:
        body = body.setdefault(key, {})
    body[path[-1]] = value


class Balances:
    """Keys 5 available, 6 ledger and 7 currency of a card response <-> field 49 (the
    currency) and field 54, one 20-character amount block per balance: account type
    00, amount type (01 ledger, 02 available), currency (000 when key 7 is absent),
    C or D, 12 digits (ISO 8583:1987 field 54)."""
    fields = ("49", "54")
    TYPES = (("ledger", "01"), ("available", "02"))     # as the amount type codes go

    def bind(self, rule):
        bound = Balances()
        keys = protocol.KEYS[rule]
        bound.currency = keys["currency"]
        bound.types = [(keys[name], kind) for name, kind in self.TYPES]
        return bound

    def to_iso(self, body, iso):
        currency = body.get(self.currency)
        if currency is not None:
            iso["49"] = Number(3).to_iso(currency)
        blocks = []
        for key, kind in self.types:
            value = body.get(key)
            if value is not None:
                sign = "C" if value >= 0 else "D"
                blocks.append("00" + kind + f"{currency or 0:03d}" + sign
                              + Number(12).to_iso(abs(value)))
        if blocks:
            iso["54"] = "".join(blocks)

    def from_iso(self, iso, body):
        if "49" in iso:
            body[self.currency] = Number(3).from_iso(iso["49"])
        text = iso.get("54")
        if text is None:
            return
        currency = f"{body.get(self.currency, 0):03d}"
        blocks = [text[i:i + 20] for i in range(0, len(text), 20)]
        kinds = dict((kind, key) for key, kind in self.types)
        seen = []
        for block in blocks:
            if (len(block) != 20 or block[:2] != "00" or block[2:4] not in kinds
                    or block[4:7] != currency or block[7] not in "CD"):
                raise MappingError("field 54: not an amount block of ours")
            magnitude = Number(12).from_iso(block[8:])
            sign = block[7:8]
            if sign == "D" and magnitude == 0:
                raise MappingError("field 54: D with zero")
            seen.append(block[2:4])
            body[kinds[block[2:4]]] = magnitude if sign == "C" else -magnitude
        if seen != [k for _, k in self.types if k in seen]:
            raise MappingError("field 54: blocks repeated or out of order")


class Mac:
    """The MAC key <-> field 64, or 128 when the message has a secondary bitmap (a
    field above 64), as ISO 8583:1987 places the MAC."""
    fields = ("64", "128")

    def bind(self, rule):
        bound = Mac()
        bound.key = protocol.mac_key(protocol.SCHEMA[rule]["type"])
        return bound

    def to_iso(self, body, iso):
        if self.key in body:
            place = "128" if any(f.isdigit() and int(f) > 64 for f in iso) else "64"
            iso[place] = Binary().to_iso(body[self.key])

    def from_iso(self, iso, body):
        place = "128" if any(f.isdigit() and 64 < int(f) < 128 for f in iso) else "64"
        other = "64" if place == "128" else "128"
        if other in iso:
            raise MappingError(f"field {other}: the MAC belongs in field {place}")
        if place in iso:
            body[self.key] = Binary().from_iso(iso[place])


_NOTIFICATION = [
    Row(("notification", "status"), 60, Number(2)),
    Row(("notification", "channel"), 61, Text()),
    Row(("notification", "destination"), 62, Text(encoding="utf-8")),
    Row(("notification", "detail"), 63, Text(encoding="utf-8")),
]
_CARD_REQUEST = [
    Row(("terminal_id",), 41, Text(8)),
    Row(("trace",), 11, Number(6)),
    Row(("time",), 48, Number(max_digits=19)),
    Row(("card", "pan"), 2, Digits()),
    Row(("card", "expiry"), 14, Digits()),
    Row(("card", "service_code"), 40, Digits()),
    Row(("pin_block",), 52, Binary()),
    Row(("ksn",), 53, Binary()),
    Row(("entry_mode",), 22, EntryMode()),
    Row(("icc",), 55, Binary()),
]
_CARD_RESPONSE = [
    Row(("terminal_id",), 41, Text(8)),
    Row(("trace",), 11, Number(6)),
    Row(("response_code",), 39, Text(2)),
    Row(("approval_code",), 38, Text(6)),
    Balances(),
    *_NOTIFICATION,
    Row(("ksn",), 53, Binary()),
    Row(("pin_tries_left",), 120, Number(max_digits=3)),
    Row(("arpc",), 55, Arpc()),
    # the request digest is not sent: both ends have the request's bytes
]

# schema rule -> its rows (the MAC row last: its field depends on the others)
_ROWS = {
    "balance-request": _CARD_REQUEST + [Mac()],
    "purchase-request": _CARD_REQUEST + [
        Row(("amount",), 4, Number(12)),
        Row(("currency",), 49, Number(3)),
        Row(("merchant_id",), 42, Text(15)),
        Row(("merchant_name",), 43, MerchantName()),
        Mac()],
    "reversal-request": [
        Row(("terminal_id",), 41, Text(8)),
        Row(("trace",), 11, Number(6)),
        Row(("time",), 48, Number(max_digits=19)),
        Row(("ksn",), 53, Binary()),
        Row(("amount",), 4, Number(12)),
        Row(("currency",), 49, Number(3)),
        Row(("original_trace",), 90, OriginalData()),
        Row(("original_ksn",), 123, Binary()),
        Row(("reason",), 121, Number(1)),
        Mac()],
    "balance-response": _CARD_RESPONSE + [Mac()],
    "purchase-response": _CARD_RESPONSE + [Mac()],
    "reversal-response": [
        Row(("terminal_id",), 41, Text(8)),
        Row(("trace",), 11, Number(6)),
        Row(("response_code",), 39, Text(2)),
        *_NOTIFICATION,
        Row(("ksn",), 53, Binary()),
        Row(("original_trace",), 90, OriginalData()),
        Row(("outcome",), 122, Number(1)),
        Mac()],
}
TABLES = {rule: [row.bind(rule) for row in rows] for rule, rows in _ROWS.items()}

# ---- fields derived from the CBOR ones: present, and checked ---------------------

_PROCESSING = {spec.BALANCE_INQUIRY: spec.PROCESSING_BALANCE,
               spec.PURCHASE: spec.PROCESSING_PURCHASE,
               spec.REVERSAL: spec.PROCESSING_PURCHASE}


def _utc(seconds: int):
    try:
        return _time.gmtime(seconds)
    except (OverflowError, OSError, ValueError):
        raise MappingError("terminal time out of range") from None


def _value(rule: str, name: str, body: dict):
    return body[protocol.KEYS[rule][name]]


def derived_request_fields(mti: str, body: dict) -> dict:
    """Fields 3, 7, 12, 13, 25 and 37 of a request, from its MTI, time (key 3) and
    trace (key 2). Field 37, the retrieval reference number, is YDDDhh (the last digit
    of the year, the day of the year, the hour) and the STAN, as acquirers commonly
    make it."""
    rule = RULE[MTYPE[mti]]
    t = _utc(_value(rule, "time", body))
    trace = _value(rule, "trace", body)
    return {
        "3": _PROCESSING[mti],
        "7": _time.strftime("%m%d%H%M%S", t),
        "12": _time.strftime("%H%M%S", t),
        "13": _time.strftime("%m%d", t),
        "25": "00",                         # normal presentment
        "37": f"{t.tm_year % 10}{t.tm_yday:03d}{t.tm_hour:02d}{trace:06d}",
    }


# what a response echoes from its request, untouched by the issuer's MAC: the bridge
# checks them against the request it sent
ECHOED = ("3", "7", "37")


# ---- the four directions ---------------------------------------------------------


def _to_iso(rule: str, body: dict) -> dict:
    iso = {}
    for row in TABLES[rule]:
        row.to_iso(body, iso)
    return iso


def _from_iso(rule: str, iso: dict) -> dict:
    known = {f for row in TABLES[rule] for f in row.fields}
    body = {}
    for row in TABLES[rule]:
        row.from_iso(iso, body)
    return body, known


def _decoded(rule: str, body: bytes) -> dict:
    try:
        fields = protocol.decode(rule, body)
        protocol.parse(rule, fields)
    except protocol.SchemaError as exc:
        raise MappingError(str(exc)) from None
    return fields


def _checked(rule: str, fields: dict) -> bytes:
    try:
        protocol.parse(rule, fields)
    except protocol.SchemaError as exc:
        raise MappingError(str(exc)) from None
    return cbor_profile.encode(fields)


def request_to_iso(mtype: int, body: bytes) -> dict:
    """The ISO 8583 fields (pyiso8583's form, "t" the MTI) of the board's request
    `body` of link type `mtype`; MappingError if it cannot cross losslessly."""
    if mtype not in MTI or RULE[mtype].endswith("response"):
        raise MappingError(f"type {mtype:#04x} is not a financial request")
    rule, mti = RULE[mtype], MTI[mtype]
    fields = _decoded(rule, body)
    iso = {"t": mti, **_to_iso(rule, fields), **derived_request_fields(mti, fields)}
    if iso_to_request(iso) != (mtype, bytes(body)):
        raise MappingError(f"{rule} does not cross ISO 8583 unchanged")
    return iso


def iso_to_request(iso: dict):
    """(link type, CBOR body) of an ISO 8583 request: the very bytes the board sent,
    when the fields are those request_to_iso made of them. MappingError otherwise."""
    mti = iso.get("t")
    if mti not in REQUEST_MTIS:
        raise MappingError(f"MTI {mti} is not a financial request")
    mtype = MTYPE[mti]
    rule = RULE[mtype]
    fields, known = _from_iso(rule, iso)
    body = _checked(rule, fields)
    derived = derived_request_fields(mti, fields)
    for number, value in derived.items():
        if iso.get(number) != value:
            raise MappingError(f"field {number} missing or not what the request's "
                               f"time and trace give")
    extra = sorted(set(iso) - known - set(derived) - {"t"}, key=int)
    if extra:
        raise MappingError(f"field {extra[0]} has no place in a {mti}")
    return mtype, body


def response_to_iso(mtype: int, body: bytes, request: dict) -> dict:
    """The ISO 8583 fields of the issuer's response `body` (link type `mtype`) to the
    ISO request `request`: the response's own fields and the request's echoed ones.
    Key 17 stays behind: it must be the digest of the CBOR request `request` gives."""
    if mtype not in MTI or not RULE[mtype].endswith("response"):
        raise MappingError(f"type {mtype:#04x} is not a financial response")
    rule = RULE[mtype]
    fields = _decoded(rule, body)
    _, request_body = iso_to_request(request)
    digest = hashlib.sha256(request_body).digest()
    if fields.get(protocol.KEYS[rule]["request_digest"]) != digest:
        raise MappingError("response does not answer this request's bytes")
    iso = {"t": MTI[mtype], **{n: request[n] for n in ECHOED if n in request},
           **_to_iso(rule, fields)}
    if iso_to_response(iso, digest) != (mtype, bytes(body)):
        raise MappingError(f"{rule} does not cross ISO 8583 unchanged")
    return iso


def iso_to_response(iso: dict, request_digest: bytes):
    """(link type, CBOR body) of an ISO 8583 response with a MAC, given the SHA-256 of
    the CBOR request it answers (key 17). MappingError if it is not one of ours."""
    mti = iso.get("t")
    mtype = MTYPE.get(mti)
    if mtype is None or not RULE[mtype].endswith("response"):
        raise MappingError(f"MTI {mti} is not a financial response")
    rule = RULE[mtype]
    fields, known = _from_iso(rule, iso)
    fields[protocol.KEYS[rule]["request_digest"]] = request_digest
    body = _checked(rule, fields)
    extra = sorted(set(iso) - known - set(ECHOED) - {"t"}, key=int)
    if extra:
        raise MappingError(f"field {extra[0]} has no place in a {mti}")
    return mtype, body


def has_mac(iso: dict) -> bool:
    """Whether a response carries a MAC: one without is the host's refusal of a request
    it could not answer under the request's key (docs/iso8583.md, "Refusals")."""
    return "64" in iso or "128" in iso


def refusal(request: dict, code: str) -> dict:
    """The response to `request` (what of it could be decoded) that says `code` without
    a MAC: its MTI, and the STAN and terminal id when they are readable."""
    mti = request.get("t")
    iso = {"t": RESPONSE_MTI[mti], "39": code}
    for number in ("11", "41", "70", "7"):
        value = request.get(number)
        if isinstance(value, str) and _valid(number, value):
            iso[number] = value
    return iso


def _valid(number: str, value: str) -> bool:
    try:
        spec.pack({"t": spec.NETWORK_RESPONSE, number: value})
    except spec.Iso8583Error:
        return False
    return number == "41" or value.isdigit()


def network(code: str, stan: int, now: float) -> dict:
    """An 0800: sign-on (001) or echo test (301)."""
    return {"t": spec.NETWORK, "7": _time.strftime("%m%d%H%M%S", _utc(int(now))),
            "11": f"{stan:06d}", "70": code}


def network_response(request: dict, code: str = APPROVED) -> dict:
    """The 0810 to an 0800: its fields 7, 11 and 70 echoed, and the response code."""
    return {**{n: request[n] for n in ("7", "11", "70") if n in request},
            "t": spec.NETWORK_RESPONSE, "39": code}
