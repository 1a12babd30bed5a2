"""Bytes on the wire per transaction: the board's CBOR messages in their frames (link
header, COBS, CRC, delimiters) and the ACK each one draws, against the same
transaction's fields written as JSON (field names as in docs/protocol.md, byte strings
in base64, one object per line: the usual JSON encoding of such a message, with no
integrity check or sequence number of its own), and as the ISO 8583 message the bridge
sends the issuer host for it (link/iso8583_spec.py, the lossless mapping of
link/iso8583_map.py, with its 2-byte length header on the TCP stream)."""
import base64
import json

from posbridge.link import iso8583_framing, iso8583_map, iso8583_spec
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


def as_iso8583(mtype: int, body: bytes, request_body: bytes = None) -> bytes:
    """The message as the bridge and the issuer host carry it, framed for TCP."""
    if request_body is None:
        iso = iso8583_map.request_to_iso(mtype, body)
    else:
        request = iso8583_map.request_to_iso(mtype - 1, request_body)
        iso = iso8583_map.response_to_iso(mtype, body, request)
    return iso8583_framing.frame(iso8583_spec.pack(iso))


def sizes(bodies: dict) -> dict:
    """{kind: {message type: sizes}} for each kind of transaction whose request and
    response bodies are in `bodies` ({kind: {message type: body}})."""
    out = {}
    for kind, pair in bodies.items():
        req = min(pair)
        row = {}
        for mtype in (req, req + 1):
            body = pair[mtype]
            row[mtype] = {"body": len(body),
                          "frame": len(encode_frame(bytes(p.HEADER_SIZE) + body)),
                          "json": len(as_json(mtype, body)),
                          "iso": len(as_iso8583(mtype, body,
                                                None if mtype == req else pair[req]))}
        out[kind] = row
    return out


def markdown(bodies: dict) -> list:
    lines = [
        "Bytes on the wire per transaction (`benchmarks/wire_bytes.py`): the CBOR body, "
        "its frame (4-byte link header, COBS, CRC-32, delimiters) and the ACK frame it "
        f"draws ({ACK_FRAME} bytes), against the same fields as one line of JSON "
        "(names as in docs/protocol.md, byte strings in base64, no integrity check) and "
        "as the ISO 8583 message the bridge and the issuer host exchange for it "
        "(docs/iso8583.md: binary bitmap, BCD numbers, its 2-byte length header; the "
        "same MAC, the ISO side's echoed and derived fields).",
        "",
        "| transaction | message | CBOR body | frame | frame + ACK | JSON | ISO 8583 | "
        "JSON / frame + ACK | ISO 8583 / frame + ACK |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, row in sizes(bodies).items():
        req, rsp = sorted(row)
        total_frames = total_json = total_iso = 0
        for mtype in (req, rsp):
            r = row[mtype]
            framed = r["frame"] + ACK_FRAME
            total_frames += framed
            total_json += r["json"]
            total_iso += r["iso"]
            lines.append(f"| {kind if mtype == req else ''} | {p.TYPE_NAMES[mtype]} | "
                         f"{r['body']} | {r['frame']} | {framed} | {r['json']} | {r['iso']} | "
                         f"{r['json'] / framed:.2f} | {r['iso'] / framed:.2f} |")
        lines.append(f"| | both ways | | | **{total_frames}** | **{total_json}** | "
                     f"**{total_iso}** | {total_json / total_frames:.2f} | "
                     f"{total_iso / total_frames:.2f} |")
    lines.append("")
    return lines
