"""Bytes on the wire per transaction: the board's CBOR messages in their frames (link
header, COBS, CRC, delimiters) and the ACK each one draws, against the same
transaction's fields written as JSON (field names as in docs/protocol.md, byte strings
in base64, one object per line: the usual JSON encoding of such a message, with no
integrity check or sequence number of its own). An ISO 8583 column comes with the
project's ISO 8583 message spec."""
import base64
import json

from posbridge.link import protocol as p
from posbridge.link.framing import encode_frame

ACK_FRAME = len(encode_frame(bytes(p.HEADER_SIZE)))


def _jsonable(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def as_json(mtype: int, body: bytes) -> bytes:
    """The message as one line of JSON: its type's name and its fields by name."""
    fields = p.parse(p.RULES[mtype][0], body)
    doc = {"type": p.TYPE_NAMES[mtype], **_jsonable(fields)}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def sizes(bodies: dict) -> dict:
    """{(request type, response type): {...}} for each transaction whose two bodies
    are in `bodies` ({message type: body})."""
    out = {}
    for req in (p.BALANCE_REQUEST, p.PURCHASE_REQUEST):
        if req not in bodies or req + 1 not in bodies:
            continue
        row = {}
        for mtype in (req, req + 1):
            body = bodies[mtype]
            row[mtype] = {"body": len(body),
                          "frame": len(encode_frame(bytes(p.HEADER_SIZE) + body)),
                          "json": len(as_json(mtype, body))}
        out[(req, req + 1)] = row
    return out


def markdown(bodies: dict) -> list:
    lines = [
        "Bytes on the wire per transaction (`benchmarks/wire_bytes.py`): the CBOR body, "
        "its frame (4-byte link header, COBS, CRC-32, delimiters) and the ACK frame it "
        f"draws ({ACK_FRAME} bytes), against the same fields as one line of JSON "
        "(names as in docs/protocol.md, byte strings in base64, no integrity check). "
        "ISO 8583: not measured here until the project has its ISO 8583 message spec.",
        "",
        "| transaction | message | CBOR body | frame | frame + ACK | JSON | JSON / frame + ACK |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    names = {p.BALANCE_REQUEST: "balance inquiry", p.PURCHASE_REQUEST: "purchase"}
    for (req, rsp), row in sizes(bodies).items():
        total_frames = total_json = 0
        for mtype in (req, rsp):
            r = row[mtype]
            framed = r["frame"] + ACK_FRAME
            total_frames += framed
            total_json += r["json"]
            lines.append(f"| {names[req] if mtype == req else ''} | {p.TYPE_NAMES[mtype]} | "
                         f"{r['body']} | {r['frame']} | {framed} | {r['json']} | "
                         f"{r['json'] / framed:.2f} |")
        lines.append(f"| | both ways | | | **{total_frames}** | **{total_json}** | "
                     f"{total_json / total_frames:.2f} |")
    lines.append("")
    return lines
