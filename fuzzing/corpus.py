"""Seeded corpora for the board's decoders: valid inputs made by the host's own encoders
(profile CBOR, link frames, card reader records), then mutated the ways line noise and a
hostile peer would (bit flips, bytes set to boundary values, inserted, deleted,
duplicated, truncated, spliced), plus crafted extremes (huge declared lengths, deep
nesting, long runs without a delimiter) and plain random bytes. The same seed gives the
same corpus. Written as records: 2-byte big-endian length, then the input."""
import random
import struct
from pathlib import Path

from posbridge.board.peripherals import bad_read_record, card_record
from posbridge.link import cbor_profile
from posbridge.link import protocol as p
from posbridge.link.framing import MAX_PAYLOAD, encode_frame
from posbridge.link.pan import luhn_check_digit

MAX_INPUT = 1024   # mp_fuzz.py's buffer
BOUNDARY = (0x00, 0x01, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1F, 0x20, 0x3B, 0x3D, 0x3F,
            0x40, 0x5F, 0x60, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
            0xFB, 0xFE, 0xFF, 0x02, 0x03)


def _value(rng, depth=0):
    kind = rng.randrange(10 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32,
                           2 ** 64 - 1, rng.randrange(2 ** 64)])
    if kind == 1:
        return -rng.choice([1, 24, 25, 256, 257, 2 ** 32, 2 ** 64, rng.randrange(1, 2 ** 64)])
    if kind == 2:
        return rng.randbytes(rng.choice([0, 1, 8, 12, 16, 23, 24, 32, rng.randrange(64)]))
    if kind == 3:
        return "".join(rng.choice("aZ09 -éü中文€\U0001F600")
                       for _ in range(rng.randrange(30)))
    if kind == 4:
        return rng.choice([True, False, None])
    if kind == 5:
        return rng.randrange(-1000, 1000)
    if kind in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(6))]
    keys = rng.sample(range(1, 30), rng.randrange(8))
    return {k if rng.random() < 0.9 else str(k): _value(rng, depth + 1) for k in keys}


def _pattern_text(pattern: str, rng) -> str:
    """A text matching one of the schema's patterns ("sms|app", "[0-9]{2}", "[0-9]{12,19}")."""
    if "|" in pattern:
        return rng.choice(pattern.split("|"))
    counts = pattern[pattern.index("{") + 1:-1].split(",")
    n = rng.randrange(int(counts[0]), int(counts[-1]) + 1)
    return "".join(rng.choice("0123456789") for _ in range(n))


def _field_value(field, rng):
    """A value within the field's limits (protocol.SCHEMA), so the body parses."""
    lim = field.limits
    if field.type == "map":
        return valid_fields(lim, rng)
    if field.type == "bool":
        return rng.random() < 0.5
    if isinstance(lim, str):
        return _pattern_text(lim, rng)
    if field.type in ("uint", "int"):
        lo, hi = lim if lim else ((0, 2 ** 32) if field.type == "uint" else (-2 ** 31, 2 ** 31))
        return rng.choice([lo, hi, rng.randint(lo, hi)])
    lo, hi = lim if lim else (0, 40)
    n = rng.randint(lo, hi)
    if field.type == "bstr":
        return rng.randbytes(n)
    return "".join(rng.choice("AZaz09 .-") for _ in range(n))


def valid_fields(rule: str, rng) -> dict:
    """A `rule` body (keys as sent) that protocol.parse accepts, optional fields at random."""
    return {key: _field_value(f, rng) for key, f in p.TABLES[rule].items()
            if f.presence == p.REQUIRED or rng.random() < 0.5}


RULES = sorted(p.SCHEMA)


def message_seed(rng) -> bytes:
    """The rule's index, then a valid body of that rule."""
    n = rng.randrange(len(RULES))
    return bytes([n]) + cbor_profile.encode(valid_fields(RULES[n], rng))


def message_crafted(rng) -> bytes:
    return bytes([rng.randrange(256)]) + cbor_crafted(rng)


def cbor_seed(rng) -> bytes:
    if rng.random() < 0.5:   # the board's own messages, and CBOR of every other shape
        return message_seed(rng)[1:]
    while True:
        data = cbor_profile.encode(_value(rng))
        if len(data) <= MAX_INPUT:
            return data


def cbor_crafted(rng) -> bytes:
    head = rng.choice([0x5B, 0x7B, 0x9B, 0xBB, 0x5A, 0x9A, 0xBA, 0x1B, 0x3B])
    extreme = rng.choice([2 ** 64 - 1, 2 ** 63, 2 ** 32 - 1, 2 ** 31, rng.randrange(2 ** 64)])
    fmt = ">Q" if head & 0x1F == 0x1B else ">I"
    if fmt == ">I":
        extreme &= 0xFFFFFFFF
    nest = bytes([rng.choice([0x81, 0xA1, 0x9F, 0xBF])]) * rng.randrange(1, 600)
    return rng.choice([bytes([head]) + struct.pack(fmt, extreme) + rng.randbytes(8),
                       nest + b"\x01", nest,
                       b"\x9b" + b"\xff" * 8,
                       bytes([0xA0 + rng.randrange(24)]) + b"\x01\x01" * rng.randrange(30)])


def frame_seed(rng) -> bytes:
    frames = [encode_frame(rng.randbytes(rng.randrange(1, MAX_PAYLOAD + 1)))
              for _ in range(rng.randrange(1, 4))]
    noise = [rng.randbytes(rng.randrange(8)) for _ in frames]
    return b"".join(n + f for n, f in zip(noise, frames))[:MAX_INPUT]


def frame_crafted(rng) -> bytes:
    return rng.choice([
        bytes([rng.randrange(1, 256)]) * rng.randrange(200, MAX_INPUT),  # no delimiter
        b"\x00" + bytes([0xFF]) + rng.randbytes(20).replace(b"\x00", b"\x01") + b"\x00",
        b"\x00" * rng.randrange(1, 300),
        b"\x00" + bytes([rng.randrange(2, 255)]) + b"\x00",
        b"\x00\x05\x01\x02\x00",                   # a COBS block cut by a delimiter
    ])


def _pan(rng) -> str:
    length = rng.choice([12, 13, 15, 16, 16, 16, 19, rng.randrange(8, 22)])
    body = "".join(rng.choice("0123456789") for _ in range(max(1, length - 1)))
    return body + str(luhn_check_digit(body)) if rng.random() < 0.8 else body + "0"


def card_seed(rng) -> bytes:
    if rng.random() < 0.05:
        return bad_read_record()
    expiry = f"{rng.randrange(0, 100):02d}{rng.choice([1, 6, 12, 0, 13, rng.randrange(100)]):02d}"
    svc = rng.choice(["201", "101", "501", "601", "701", "000", "999", "2a1"])
    disc = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 20)))
    records = [card_record(_pan(rng), expiry, svc, disc) for _ in range(rng.randrange(1, 3))]
    return b"".join(rng.randbytes(rng.randrange(3)) + r for r in records)


def card_crafted(rng) -> bytes:
    return rng.choice([
        b"\x02" + b";" + b"4" * rng.randrange(40, 200) + b"\x03\x00",
        b"\x02" * rng.randrange(1, 100),
        b"\x02;\x03" + bytes([0x3B ^ 0x03]),
        b"\x02;=?\x03" + bytes([0x3B ^ 0x3D ^ 0x3F ^ 0x03]),
        b"\x03" * 50 + b"\x02",
    ])


def _tlv(tag: int, value: bytes) -> bytes:
    """BER-TLV (EMV Book 3 Annex B): the tag's bytes, a length of 1 to 3 bytes, value."""
    t = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    n = len(value)
    length = bytes([n]) if n < 0x80 else (b"\x81" + bytes([n]) if n < 0x100
                                         else b"\x82" + n.to_bytes(2, "big"))
    return t + length + value


def tlv_seed(rng) -> bytes:
    """Card answers shaped as EMV's: an FCI (6F > 84, A5 > 50, BF0C > 61 > 4F, 87), a
    record (70 > 5A, 57, 5F24), a GENERATE AC answer (77 > 9F27, 9F36, 9F26, 9F10)."""
    rb = rng.randbytes
    kind = rng.randrange(3)
    if kind == 0:
        apps = b"".join(_tlv(0x61, _tlv(0x4F, rb(7)) + _tlv(0x87, bytes([rng.randrange(1, 16)])))
                        for _ in range(rng.randrange(1, 4)))
        return _tlv(0x6F, _tlv(0x84, b"2PAY.SYS.DDF01") +
                    _tlv(0xA5, _tlv(0x50, b"VISA CREDIT") + _tlv(0xBF0C, apps)))
    if kind == 1:
        return _tlv(0x70, _tlv(0x5A, rb(8)) + _tlv(0x57, rb(rng.randrange(10, 20))) +
                    _tlv(0x5F24, rb(3)) + b"\x00" * rng.randrange(2))
    return _tlv(0x77, _tlv(0x9F27, b"\x80") + _tlv(0x9F36, rb(2)) + _tlv(0x9F26, rb(8)) +
                _tlv(0x9F10, rb(rng.randrange(7, 33))) + _tlv(0x9F4B, rb(rng.randrange(130))))


def tlv_crafted(rng) -> bytes:
    return rng.choice([
        b"\x70\x82\xff\xff" + rng.randbytes(10),       # a length past the end
        b"\x6f\x02" * rng.randrange(4, 40) + b"\x5a\x00",  # templates past MAX_DEPTH
        b"\x9f" + b"\xff" * rng.randrange(1, 8) + b"\x01\x00",   # a tag that never ends
        b"\x5a\x80\x01",                                # indefinite length
        b"\x00" * rng.randrange(1, 200),
    ])


def _pn532_frame(data: bytes, tfi: int = 0xD5) -> bytes:
    """A PN532 information frame (NXP UM0701-02 6.2.1.1, extended 6.2.1.3 when the TFI
    and data are over 255 bytes): preamble, start code, length and its checksum, TFI,
    data, data checksum, postamble."""
    body = bytes([tfi]) + data
    n = len(body)
    dcs = (-sum(body)) & 0xFF
    if n <= 255:
        head = bytes([n, (-n) & 0xFF])
    else:
        head = b"\xff\xff" + n.to_bytes(2, "big") + bytes([(-(n >> 8) - n) & 0xFF])
    return b"\x00\x00\xff" + head + body + bytes([dcs, 0])


def pn532_seed(rng) -> bytes:
    parts = []
    for _ in range(rng.randrange(1, 4)):
        r = rng.random()
        if r < 0.2:
            parts.append(b"\x00\x00\xff\x00\xff\x00")                 # ACK
        elif r < 0.25:
            parts.append(b"\x00\x00\xff\xff\x00\x00")                 # NACK
        elif r < 0.3:
            parts.append(_pn532_frame(b"\x7f"))                         # error frame
        else:
            cmd = rng.choice([0x41, 0x4B, 0x03, 0x15, 0x33, 0x53])
            size = rng.choice([0, 1, 10, 40, 200, 253, 254, 255, 262, rng.randrange(300)])
            parts.append(_pn532_frame(bytes([cmd]) + rng.randbytes(size)))
    return b"".join(rng.randbytes(rng.randrange(3)) + p for p in parts)


def pn532_crafted(rng) -> bytes:
    return rng.choice([
        b"\x00\x00\xff\xff\xff\x7f\xff\x82" + rng.randbytes(40),   # extended, too long
        b"\x00\xff" * rng.randrange(1, 200),
        b"\x00\x00\xff\x05\xfa\xd4\x01\x02\x03",                     # host-to-chip TFI
        b"\x00\x00\xff\x01\x00",                                        # bad length checksum
        b"\x00\x00\xff\xff\xff\x00\x00\x00",                           # extended length 0
    ])


def iso8583_seed(rng) -> bytes:
    """An ISO 8583 request or response as the bridge and the issuer host exchange them
    (link/iso8583_map.py over a valid body; a body the mapping refuses is drawn again)."""
    from posbridge.link import iso8583_map, iso8583_spec
    from posbridge.link.iso8583_codecs import MappingError
    for _ in range(50):
        mtype = rng.choice([p.BALANCE_REQUEST, p.PURCHASE_REQUEST, p.REVERSAL_REQUEST])
        body = cbor_profile.encode(valid_fields(p.RULES[mtype][0], rng))
        try:
            iso = iso8583_map.request_to_iso(mtype, body)
            return iso8583_spec.pack(iso)
        except (MappingError, iso8583_spec.Iso8583Error):
            continue
    return b""


def iso8583_crafted(rng) -> bytes:
    return rng.choice([b"\x01\x00" + b"\xff" * 16 + rng.randbytes(30),
                       b"\x02\x00" + b"\x80" + b"\x00" * 7 + b"\x99\x99" + rng.randbytes(10),
                       b"\x04\x00" + b"\x00" * 8])


def mutate(rng, data: bytes, pool) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 8])):
        op = rng.randrange(8)
        i = rng.randrange(len(out) + 1)
        if op == 0 and out:
            i = min(i, len(out) - 1)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[min(i, len(out) - 1)] = rng.choice(BOUNDARY)
        elif op == 2:
            out[i:i] = bytes([rng.choice(BOUNDARY) if rng.random() < 0.5 else rng.randrange(256)])
        elif op == 3 and out:
            del out[min(i, len(out) - 1)]
        elif op == 4:
            del out[i:]
        elif op == 5 and out:
            j = rng.randrange(len(out))
            out[i:i] = out[j:j + rng.randrange(1, 16)]
        elif op == 6:
            other = rng.choice(pool)
            j = rng.randrange(len(other) + 1)
            out = out[:i] + bytearray(other[j:])
        else:
            out[i:i] = rng.randbytes(rng.randrange(1, 8))
    return bytes(out[:MAX_INPUT])


KINDS = {"cbor": (cbor_seed, cbor_crafted), "framing": (frame_seed, frame_crafted),
         "card": (card_seed, card_crafted), "messages": (message_seed, message_crafted),
         "tlv": (tlv_seed, tlv_crafted), "pn532": (pn532_seed, pn532_crafted),
         "iso8583": (iso8583_seed, iso8583_crafted)}


def inputs(target: str, count: int, seed: int):
    """`count` inputs for `target`, the same for the same seed."""
    rng = random.Random(f"{target}:{seed}")
    make_seed, make_crafted = KINDS[target]
    pool = [make_seed(rng) for _ in range(200)]
    for n in range(count):
        r = rng.random()
        if r < 0.15:
            yield make_seed(rng)
        elif r < 0.80:
            yield mutate(rng, rng.choice(pool), pool)
        elif r < 0.90:
            yield make_crafted(rng)
        else:
            yield rng.randbytes(rng.randrange(0, 300))


def write(path: Path, items) -> int:
    n = 0
    with open(path, "wb") as f:
        for data in items:
            f.write(len(data).to_bytes(2, "big") + data)
            n += 1
    return n


def read(path: Path) -> list:
    data = Path(path).read_bytes()
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 2], "big")
        out.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return out
