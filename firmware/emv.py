"""The EMV contactless read on the board, from the PPSE to the ICC data of an online
authorisation (EMV Contactless Book B, entry point; EMV Book 3, commands, DOLs, AFL):

    SELECT 2PAY.SYS.DDF01 -> the applications on the card (BF0C > 61: 4F AID, 87 priority)
    SELECT the one the terminal takes with the highest priority -> 84 DF name, 9F38 PDOL
    GET PROCESSING OPTIONS with the PDOL's data -> 80 (AIP, AFL) or 77 (82, 94, ...)
    READ RECORD for each record of the AFL -> 70 templates
    GENERATE AC (ARQC) with the CDOL1's data, for a card that gave no cryptogram so far

read() returns plain values: (PAN, expiry YYMM, service code, masked PAN, ICC data), the
ICC data being the BER-TLV of HELPERS' tag list (ISO 8583 field 55). A card the terminal
cannot use ends in a CardError whose text fits a screen line; pn532.CardGone and
ReaderError pass through. Only this module sees track 2 equivalent data (57): it keeps
the service code and wipes the rest.
"""
import os
import time

import tlv
from wipe import wipe
from micropython import const

# the applications this terminal takes, in its own order for equal priorities:
# UnionPay debit, credit (QuickPass), Visa (payWave), Mastercard (contactless)
_AIDS = (b"\xa0\x00\x00\x03\x33\x01\x01\x01", b"\xa0\x00\x00\x03\x33\x01\x01\x02",
         b"\xa0\x00\x00\x00\x03\x10\x10", b"\xa0\x00\x00\x00\x04\x10\x10")
_PPSE = b"\x00\xa4\x04\x00\x0e2PAY.SYS.DDF01\x00"
_MAX_RECORDS = const(16)
# ICC data for the online authorisation, in this order (docs/protocol.md, key 19)
_ICC_TAGS = (0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A,
             0x9F1A, 0x9F37, 0x84, 0x5F34)
_MANDATORY = (0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x57)
# numeric terminal data: a DOL asking for another length gets it cut or padded on the
# left (EMV Book 3 5.4); other formats on the right
_NUMERIC = (0x9F02, 0x9F03, 0x5F2A, 0x9F1A, 0x9A, 0x9C)


class CardError(Exception):
    pass


def read(reader, tg, amount, tx_type, cvm_required, currency, country, local_unix):
    """Read the card at target tg of reader (pn532.PN532) for a transaction of
    `amount` minor units of `currency` (ISO 4217 numeric), type tx_type (9C: 0x00
    purchase, 0x31 balance inquiry), in `country` (ISO 3166 numeric), on the local date
    of local_unix (seconds, or None)."""
    term = {
        0x9F02: _bcd(amount, 6), 0x9F03: bytes(6), 0x5F2A: _bcd(currency, 2),
        0x9F1A: _bcd(country, 2), 0x95: bytes(5), 0x9A: _date(local_unix),
        0x9C: bytes((tx_type,)), 0x9F37: os.urandom(4), 0x9F35: b"\x21",
        # TTQ (EMV Book C-3 A.2): qVSDC, online PIN; online cryptogram required; CVM
        # required above the contactless CVM limit
        0x9F66: b"\x24\xc0\x00\x00" if cvm_required else b"\x24\x80\x00\x00",
    }
    card = {0x84: None, 0x9F26: None, 0x9F27: None, 0x9F10: None, 0x9F36: None,
            0x82: None, 0x94: None, 0x57: None, 0x5A: None, 0x5F24: None, 0x5F34: None,
            0x8C: None}
    try:
        card[0x84] = aid = _choose(reader, tg)
        r = _command(reader, tg, b"\x00\xa4\x04\x00" + bytes((len(aid),)) + aid + b"\x00")
        fci = tlv.collect(r, 0, len(r), {0x84: None, 0x9F38: None})
        if fci[0x84] is not None:
            card[0x84] = fci[0x84]
        data = _dol(fci[0x9F38], term)
        r = _command(reader, tg, b"\x80\xa8\x00\x00" + bytes((len(data) + 2, 0x83, len(data)))
                     + data + b"\x00")
        _answer(r, card)
        _records(reader, tg, card)
        if card[0x9F26] is None and card[0x8C] is not None:
            # the cryptogram comes from GENERATE AC (an ARQC: P1 0x80) on such cards
            data = _dol(card[0x8C], term)
            r = _command(reader, tg, b"\x80\xae\x80\x00" + bytes((len(data),)) + data + b"\x00")
            _answer(r, card)
        for tag in _MANDATORY:
            if card[tag] is None:
                raise CardError("Card read error")
        got = _track2(card[0x57], card[0x5A])
        if card[0x5F24] is not None and len(card[0x5F24]) == 3:
            got[1] = "%02x%02x" % (card[0x5F24][0], card[0x5F24][1])
        term.update(card)
        icc = bytearray()
        for tag in _ICC_TAGS:
            v = term.get(tag)
            if v is not None:
                icc += (tag.to_bytes(2, "big") if tag > 0xFF else bytes((tag,)))
                icc += bytes((len(v),))
                icc += v
        if len(icc) > 255:
            raise CardError("Card read error")
        pan = got[0]
        return (pan, got[1], got[2], pan[:6] + "*" * (len(pan) - 10) + pan[-4:], bytes(icc))
    except tlv.TLVError:
        raise CardError("Card read error")
    finally:
        for v in (card[0x57], card[0x5A]):
            if v is not None:
                wipe(v)


def _choose(reader, tg):
    """The ADF name of the application to select: among the PPSE's entries the
    terminal takes, the highest priority (87: 1 highest, none or 0 last)."""
    r = _command(reader, tg, _PPSE, True)
    bounds = tlv.collect(r, 0, len(r), {0xBF0C: None})[0xBF0C]
    if bounds is None:
        raise CardError("Not supported")
    pos, end = bounds
    best = None
    rank = 0
    while pos < end:
        if r[pos] == 0:
            pos += 1
            continue
        tag, _, start, pos = tlv.head(r, pos, end)
        if tag != 0x61:
            continue
        e = tlv.collect(r, start, pos, {0x4F: None, 0x87: None})
        aid = e[0x4F]
        if aid is None:
            continue
        for i in range(len(_AIDS)):
            t = _AIDS[i]
            if aid[:len(t)] == t:
                p = e[0x87][0] & 0x0F if e[0x87] else 0
                this = (p or 16) * 8 + i
                if best is None or this < rank:
                    best = aid
                    rank = this
    if best is None:
        raise CardError("Not supported")
    return bytes(best)


def _command(reader, tg, apdu, ppse=False):
    """The card's answer without SW1 SW2 (a copy); 61xx fetched with GET RESPONSE."""
    r = reader.apdu(tg, apdu)
    for _ in range(2):
        if len(r) < 2:
            raise CardError("Card read error")
        sw1 = r[-2]
        if sw1 == 0x61:
            r = reader.apdu(tg, b"\x00\xc0\x00\x00" + bytes((r[-1],)))
            continue
        if sw1 == 0x90 and r[-1] == 0:
            return bytes(r[:-2])
        break
    # 6A82 to the PPSE: no contactless application at all on this card
    raise CardError("Not supported" if ppse or sw1 == 0x6A else "Card read error")


def _answer(r, card):
    """GPO or GENERATE AC: format 1 (80: AIP and AFL, or CID, ATC, AC, IAD) or
    format 2 (77 with tagged objects)."""
    if len(r) and r[0] == 0x80:
        tag, _, start, end = tlv.head(r, 0, len(r))
        v = r[start:end]
        if card[0x82] is None:       # GPO
            if len(v) < 2 or (len(v) - 2) % 4:
                raise CardError("Card read error")
            card[0x82] = bytearray(v[:2])
            card[0x94] = bytearray(v[2:])
        elif len(v) >= 11:           # GENERATE AC
            card[0x9F27] = bytearray(v[:1])
            card[0x9F36] = bytearray(v[1:3])
            card[0x9F26] = bytearray(v[3:11])
            card[0x9F10] = bytearray(v[11:])
        return
    tlv.collect(r, 0, len(r), card)


def _records(reader, tg, card):
    afl = card[0x94]
    if afl is None:
        return
    count = 0
    for i in range(0, len(afl) - 3, 4):
        sfi = afl[i] >> 3
        first = afl[i + 1]
        last = afl[i + 2]
        if not 0 < sfi < 31 or first == 0 or last < first:
            raise CardError("Card read error")
        for rec in range(first, last + 1):
            count += 1
            if count > _MAX_RECORDS:
                raise CardError("Card read error")
            r = _command(reader, tg, bytes((0, 0xB2, rec, sfi << 3 | 4, 0)))
            tlv.collect(r, 0, len(r), card)


def _dol(dol, term):
    """The data a DOL (tag, length pairs) asks for: the terminal's values, zeros for
    what it does not know."""
    out = bytearray()
    if dol is None:
        return out
    pos = 0
    end = len(dol)
    while pos < end:
        tag = dol[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            for _ in range(2):
                if pos >= end:
                    raise CardError("Card read error")
                b = dol[pos]
                pos += 1
                tag = tag << 8 | b
                if not b & 0x80:
                    break
            else:
                raise CardError("Card read error")
        if pos >= end:
            raise CardError("Card read error")
        n = dol[pos]
        pos += 1
        v = term.get(tag)
        if v is None:
            out += bytes(n)
        elif len(v) >= n:
            out += v[len(v) - n:] if tag in _NUMERIC else v[:n]
        elif tag in _NUMERIC:
            out += bytes(n - len(v))
            out += v
        else:
            out += v
            out += bytes(n - len(v))
        if len(out) > 250:
            raise CardError("Card read error")
    return out


def _track2(t2, pan_bytes):
    """[PAN, expiry YYMM, service code] from the track 2 equivalent (57: PAN 'D' YYMM
    service code, discretionary, 'F' padding), checked against 5A when the card has it."""
    # the separator is within 14 bytes (19 digits at most before it): the discretionary
    # data after them never becomes a string
    digits = "".join("%02x" % b for b in t2[:14])
    sep = digits.find("d")
    pan = digits[:sep]
    rest = digits[sep + 1:sep + 8]
    digits = None
    if sep < 12 or sep > 19 or len(rest) != 7 or not (pan + rest).isdigit() or not _luhn(pan):
        raise CardError("Card read error")
    if pan_bytes is not None and "".join("%02x" % b for b in pan_bytes).rstrip("f") != pan:
        raise CardError("Card read error")
    return [pan, rest[:4], rest[4:]]


def _luhn(pan):
    total = 0
    for i in range(len(pan)):
        d = ord(pan[len(pan) - 1 - i]) - 48
        if i & 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _bcd(value, n):
    """value as n bytes of packed BCD, right-aligned."""
    s = "0" * (n * 2) + str(value)
    return bytes(int(s[i:i + 2], 16) for i in range(len(s) - n * 2, len(s), 2))


def _date(local_unix):
    if local_unix is None:
        return bytes(3)
    # the port's epoch: 2000 on the ESP32, 1970 on unix
    if time.gmtime(0)[0] == 2000:
        local_unix -= 946684800
    t = time.gmtime(local_unix)
    return _bcd((t[0] % 100) * 10000 + t[1] * 100 + t[2], 3)
