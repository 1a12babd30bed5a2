"""The link's messages as a person reads them (the browser console's link panel, the
frame monitor): the board link's frames and the ISO 8583 messages decoded, fields
named, everything sensitive masked or shown as its length only.

Board link: the schema's names and redaction (protocol.named: the PAN masked, the
card's other track data left out, the PIN block and the ICC data as their length), and
anything left that looks like a card number masked once more.
ISO 8583: each field of the spec has its way of being shown (_ISO_SHOWN): the PAN
masked; the expiry and the service code left out, as the card's are on the board link;
the PIN block (52) and the ICC data (55) as their length; free text masked for card
numbers. A frame or message that does not decode is said to be so, with its size and
why, never with its bytes."""
import json

from . import protocol as p
from . import iso8583_spec as spec
from .pan import mask_pan, mask_pans_in_text


def plain(value):
    """A value JSON can carry: bytes as hex (protocol.named has already replaced every
    byte string a person may not read by its length)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def link_message(mtype: int, body: bytes):
    """(type name, fields by name, problem): fields JSON-safe and masked; problem is
    None, or why the body does not decode."""
    name = p.TYPE_NAMES.get(mtype, f"TYPE_{mtype:#04x}")
    try:
        fields = plain(p.named(mtype, p.decode_body(body)))
        problem = None
    except ValueError as exc:
        fields, problem = {}, mask_pans_in_text(f"undecodable ({len(body)} bytes): {exc}")
    # the whole through the masking pass: a number in free text (an ERROR's text, a
    # field the schema does not know) is masked too
    return name, json.loads(mask_pans_in_text(json.dumps(fields, ensure_ascii=False))), problem


def link_frame(payload: bytes) -> dict:
    """One frame payload of the board link (header and body, docs/protocol.md "Link")
    as a person reads it: type, seq, SYN flag, fields, problem."""
    if len(payload) < p.HEADER_SIZE:
        return {"name": "?", "problem": f"payload of {len(payload)} bytes: shorter than "
                                        f"the {p.HEADER_SIZE}-byte header", "fields": {}}
    version, mtype, seq, flags = payload[:p.HEADER_SIZE]
    out = {"seq": seq, "syn": bool(flags & p.FLAG_SYN)}
    if version != p.PROTOCOL_VERSION:
        return dict(out, name=f"TYPE_{mtype:#04x}", fields={},
                    problem=f"protocol version {version}, not {p.PROTOCOL_VERSION}")
    if mtype == p.TYPE_ACK:
        return dict(out, name="ACK", fields={}, problem=None)
    name, fields, problem = link_message(mtype, payload[p.HEADER_SIZE:])
    return dict(out, name=name, fields=fields, problem=problem)


# ---- ISO 8583 ---------------------------------------------------------------------

ISO_NAMES = {spec.BALANCE_INQUIRY: "balance inquiry",
             spec.BALANCE_INQUIRY_RESPONSE: "balance inquiry response",
             spec.PURCHASE: "purchase", spec.PURCHASE_RESPONSE: "purchase response",
             spec.REVERSAL: "reversal", spec.REVERSAL_RESPONSE: "reversal response",
             spec.NETWORK: "network management",
             spec.NETWORK_RESPONSE: "network management response"}
_NETWORK_CODES = {spec.SIGN_ON: "sign-on", spec.ECHO_TEST: "echo test"}


def _length(value) -> str:
    # pyiso8583 gives binary fields as hex: two characters a byte
    return f"<{len(value) // 2} bytes>"


def _number(value) -> str:
    return str(int(value)) if value.isdigit() else mask_pans_in_text(value)


def _amounts(value) -> str:
    """Field 54: 20-character blocks, account type, amount type, currency, C or D, 12
    digits (docs/iso8583.md)."""
    kinds = {"01": "ledger", "02": "available"}
    blocks = [value[i:i + 20] for i in range(0, len(value), 20)]
    # each block: account type, amount type, currency, C or D, amount
    parts = [(b[2:4], b[4:7], b[7:8], b[8:]) for b in blocks]
    if not parts or any(len(b) != 20 or not (b[:7] + b[8:]).isdigit() or sign not in ("C", "D")
                        for b, (_, _, sign, _) in zip(blocks, parts)):
        return mask_pans_in_text(value)
    return " ".join(f"{kinds.get(kind, kind)}={'-' if sign == 'D' else ''}{int(amount)} "
                    f"({currency})" for kind, currency, sign, amount in parts)


def _original(value) -> str:
    """Field 90: the original MTI and STAN, then what the reversal leaves as zeros."""
    if len(value) != 42 or not value.isdigit():
        return mask_pans_in_text(value)
    return f"MTI {value[:4]} STAN {value[4:10]}"


def _hidden(value) -> str:
    return "<hidden>"


_ISO_SHOWN = {
    "2": lambda v: mask_pan(v) if v.isdigit() else f"<{len(v)} characters>",
    "4": _number, "11": _number, "49": _number, "60": _number, "120": _number,
    "121": _number, "122": _number,
    "14": _hidden, "40": _hidden,         # the card's expiry and service code
    "52": _length, "55": _length,         # PIN block; ICC data (may hold 57 and 5A)
    "53": str.upper, "64": str.upper, "123": str.upper, "128": str.upper,
    "54": _amounts, "90": _original,
    "70": lambda v: f"{v} {_NETWORK_CODES[v]}" if v in _NETWORK_CODES else _number(v),
}


def _iso_value(number: str, value) -> str:
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    shown = _ISO_SHOWN.get(number)
    if shown is None:
        # any other field is text or a short number: shown, card numbers in it masked
        return mask_pans_in_text(value.rstrip())
    return shown(value)


def iso_fields(fields: dict) -> list:
    """[(field number, its description, the value as shown)] in field order."""
    out = []
    for number in sorted((k for k in fields if k.isdigit()), key=int):
        desc = spec.SPEC.get(number, {}).get("desc", "?")
        out.append((int(number), desc, _iso_value(number, fields[number])))
    return out


def iso_message(data: bytes) -> dict:
    """One ISO 8583 message (without its length header) as a person reads it: MTI, its
    name, the fields, problem (None, or why it does not decode; then the fields are the
    ones decoded before the fault)."""
    try:
        fields, problem = spec.unpack(data), None
    except spec.Iso8583Error as exc:
        fields = {k: v for k, v in exc.fields.items() if k not in ("h", "p", "1")}
        problem = mask_pans_in_text(f"undecodable ({len(data)} bytes): {exc}")
    mti = fields.get("t") if isinstance(fields.get("t"), str) else None
    return {"mti": mti or "?", "name": ISO_NAMES.get(mti, "unknown message type"),
            "fields": iso_fields(fields), "problem": problem}
