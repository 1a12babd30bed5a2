"""BER-TLV as EMV cards write it (EMV Book 3 Annex B, after ISO/IEC 8825-1): the
answers of a contactless card, read on the board (emv.py).

    tag     1 to 3 bytes: a first byte whose low five bits are all ones is followed by
            bytes whose top bit says another one follows (9F26, DF8116); bit 0x20 of
            the first byte marks a template (constructed: its value is more objects)
    length  1 byte below 0x80, or 0x81 n, or 0x82 n n (indefinite 0x80 is not EMV's)
    value   that many bytes; zero is allowed

Every length is checked against the bytes that are really left, templates nest at most
six deep, and 0x00 bytes between objects are skipped (Annex B allows them where
an object was erased). Anything else is a TLVError: the one error this module raises,
whatever the bytes (no text: each name and short string costs RAM for good).
"""
from micropython import const

_MAX_DEPTH = const(6)   # 6F > A5 > BF0C > 61 > 4F is the deepest EMV asks for


class TLVError(ValueError):
    pass


def head(buf, pos, end):
    """(tag, constructed, value start, value end) of the object at buf[pos:end]."""
    if pos >= end:
        raise TLVError()
    b = buf[pos]
    tag = b
    constructed = b & 0x20
    pos += 1
    if b & 0x1F == 0x1F:
        more = 0
        while True:
            if pos >= end or more == 2:
                raise TLVError()
            b = buf[pos]
            pos += 1
            more += 1
            tag = tag << 8 | b
            if not b & 0x80:
                break
    if pos >= end:
        raise TLVError()
    n = buf[pos]
    pos += 1
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 2 or pos + k > end:
            raise TLVError()
        n = buf[pos]
        if k == 2:
            n = n << 8 | buf[pos + 1]
        pos += k
    if n > end - pos:
        raise TLVError()
    return tag, constructed, pos, pos + n


def collect(buf, pos, end, fields, depth=0):
    """Walk every object of buf[pos:end], into every template, and return `fields` (a
    dict whose keys are the tags wanted, values None) with the first value of each tag found: a
    bytearray copy for a primitive object, (start, end) in buf for a template. The
    whole of buf[pos:end] is checked, not only the objects wanted."""
    if depth > _MAX_DEPTH:
        raise TLVError()
    while pos < end:
        if buf[pos] == 0:
            pos += 1
            continue
        tag, constructed, start, pos = head(buf, pos, end)
        if tag in fields and fields[tag] is None:
            fields[tag] = (start, pos) if constructed else bytearray(buf[start:pos])
        if constructed:
            collect(buf, start, pos, fields, depth + 1)
    return fields
