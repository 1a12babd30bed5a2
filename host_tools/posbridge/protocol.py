"""Message types and fields of the board-bridge protocol, host side
(docs/protocol.md; the board's copy is firmware/messages.py, kept equal by a test)."""
from . import cbor_profile
from .masking import mask_pan

PROTOCOL_VERSION = 1
HEADER_SIZE = 4
TYPE_ACK = 0
FLAG_SYN = 0x01

HELLO = 0x01
HELLO_REPLY = 0x02
STATUS_REQUEST = 0x03
STATUS = 0x04
ERROR = 0x0F

ERR_UNSUPPORTED_TYPE = 1
ERR_MALFORMED = 2
ERR_PROTOCOL_VERSION = 3
ERR_INTERNAL = 4

TYPE_NAMES = {TYPE_ACK: "ACK", HELLO: "HELLO", HELLO_REPLY: "HELLO_REPLY",
              STATUS_REQUEST: "STATUS_REQUEST", STATUS: "STATUS", ERROR: "ERROR"}

# field names per message type, for logs and the monitor
FIELDS = {
    HELLO: {1: "protocol", 2: "firmware", 3: "terminal_id"},
    HELLO_REPLY: {1: "protocol", 2: "time", 3: "bridge", 4: "utc_offset_min"},
    STATUS_REQUEST: {},
    STATUS: {1: "uptime_s", 2: "heap_free", 3: "state", 4: "link", 5: "issuer_online",
             6: "time"},
    ERROR: {1: "code", 2: "text", 3: "about_type"},
}
LINK_COUNTERS = {1: "tx", 2: "rx", 3: "retransmits", 4: "duplicates", 5: "crc_errors",
                 6: "framing_errors", 7: "oversize", 8: "bad_header", 9: "failures",
                 10: "short_writes"}

# how a field a person may read is shown: never a full PAN (GUIDE, Security)
REDACT = {"pan": mask_pan}


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
