"""Message types and fields of the board-bridge protocol, host side
(docs/protocol.md; the board's copy is firmware/messages.py, kept equal by a test)."""
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

TYPE_NAMES = {TYPE_ACK: "ACK", HELLO: "HELLO", HELLO_REPLY: "HELLO_REPLY",
              STATUS_REQUEST: "STATUS_REQUEST", STATUS: "STATUS", ERROR: "ERROR",
              BALANCE_REQUEST: "BALANCE_REQUEST", BALANCE_RESPONSE: "BALANCE_RESPONSE",
              PURCHASE_REQUEST: "PURCHASE_REQUEST", PURCHASE_RESPONSE: "PURCHASE_RESPONSE",
              REVERSAL_REQUEST: "REVERSAL_REQUEST", REVERSAL_RESPONSE: "REVERSAL_RESPONSE"}

# field names per message type, for logs and the monitor
FIELDS = {
    HELLO: {1: "protocol", 2: "firmware", 3: "terminal_id"},
    HELLO_REPLY: {1: "protocol", 2: "time", 3: "bridge"},     # 4 retired, not reused
    STATUS_REQUEST: {},
    STATUS: {1: "uptime_s", 2: "heap_free", 3: "state", 4: "link", 5: "issuer_online",
             6: "time"},
    ERROR: {1: "code", 2: "text", 3: "about_type", 4: "trace"},
    BALANCE_REQUEST: {1: "terminal_id", 2: "trace", 3: "time", 4: "card", 5: "pin_block",
                      6: "ksn", 7: "mac"},
    BALANCE_RESPONSE: {1: "terminal_id", 2: "trace", 3: "response_code", 4: "approval_code",
                       5: "available", 6: "ledger", 7: "currency", 8: "notification",
                       9: "ksn", 10: "pin_tries_left", 15: "mac"},
    PURCHASE_REQUEST: {1: "terminal_id", 2: "trace", 3: "time", 4: "card", 5: "pin_block",
                       6: "ksn", 7: "mac", 8: "amount", 9: "currency", 10: "merchant_id",
                       11: "merchant_name"},
    REVERSAL_REQUEST: {1: "terminal_id", 2: "trace", 3: "time", 6: "ksn", 7: "mac",
                       8: "amount", 9: "currency", 12: "original_trace", 13: "original_ksn",
                       14: "reason"},
    REVERSAL_RESPONSE: {1: "terminal_id", 2: "trace", 3: "response_code", 9: "ksn",
                        12: "original_trace", 15: "mac", 16: "outcome"},
}
FIELDS[PURCHASE_RESPONSE] = FIELDS[BALANCE_RESPONSE]   # the same keys
LINK_COUNTERS = {1: "tx", 2: "rx", 3: "retransmits", 4: "duplicates", 5: "crc_errors",
                 6: "framing_errors", 7: "oversize", 8: "bad_header", 9: "failures",
                 10: "short_writes"}

def _card(card) -> str:
    # the PAN masked, nothing else of the card: expiry and service code stay out of logs
    pan = card.get(1, "") if isinstance(card, dict) else ""
    return f"card {mask_pan(pan)}"


def _hidden(value) -> str:
    return f"<{len(value)} bytes>" if isinstance(value, (bytes, bytearray)) else "<hidden>"


# how a field a person may read is shown: never a full PAN (GUIDE, Security)
REDACT = {"pan": mask_pan, "card": _card, "pin_block": _hidden}


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
        if name == "link" and isinstance(value, dict):
            value = {LINK_COUNTERS.get(k, str(k)): v for k, v in value.items()}
        if name in REDACT:
            value = REDACT[name](value)
        elif isinstance(value, bytes):
            value = value.hex()
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
