"""The EMV contactless read on the board, as a visit of its own (the contract is in
app.py), from the PPSE to the ICC data of an online authorisation (EMV Contactless Book
B, entry point; EMV Book 3, commands, DOLs, AFL):

    SELECT 2PAY.SYS.DDF01 -> the applications on the card (BF0C > 61: 4F AID, 87 priority)
    SELECT the one the terminal takes with the highest priority -> 84 DF name, 9F38 PDOL
    GET PROCESSING OPTIONS with the PDOL's data -> 80 (AIP, AFL) or 77 (82, 94, ...)
    READ RECORD for each record of the AFL -> 70 templates

    GENERATE AC (ARQC) over the CDOL1's data (8C), for a card that gave no cryptogram
    at GET PROCESSING OPTIONS as qVSDC and QuickPass cards do (M/Chip cards)

A tapped card is read once the cardholder has chosen balance or purchase and keyed the
amount (transaction.py), since its cryptogram covers them: transaction.py hands over to
Read, which hands back a Transaction with the card read (app.py, `then`). So this
module, the reader's and the TLV code (some 14 KB) and the transaction's are never in
the 64 KiB heap together. A card that left the field is asked for again ("Card removed,
tap again") until Cancel or the time-out; a reader or card error ends the visit on its
screen ("Reader error", "Not supported", "Card read error").

Read.then: None while it runs or after a failure; once the card is read, the visit that
follows: (card, amount), card = (PAN, expiry YYMM, service code, masked PAN, ICC data),
the ICC data being the BER-TLV of docs/protocol.md's tag list (ISO 8583 field 55),
amount None for a balance inquiry. Only this module sees the track 2 equivalent (57):
it keeps the service code and wipes the rest.
"""
import gc
import os
import sys
import time

import settings
import tlv
import wallclock
from keypad import KEY_CANCEL
from wipe import wipe
from micropython import const

_READ_MS = const(30000)     # to present the card again
_SHOW_MS = const(3000)
_TAP_MS = const(250)        # between two looks for a card that left the field


class Read:
    def __init__(self, term, tg, amount, amount_text):
        self.term = term
        self.tg = tg                 # the card's target number while it is active
        self.amount = amount
        self.then = None
        self.notice_until = None
        self.deadline = time.ticks_add(term.clock(), _READ_MS)
        self.lines = ("PURCHASE" if amount is not None else "BALANCE", amount_text, "")
        self.retry = term.clock()    # when to look for the card (again)
        self._show("Reading card", "Hold it still")

    def step(self, now):
        term = self.term
        if self.notice_until is not None:
            return term.keys.poll() is None and time.ticks_diff(now, self.notice_until) < 0
        if term.keys.poll() == KEY_CANCEL:
            return self._end("Cancelled")
        if time.ticks_diff(now, self.deadline) >= 0:
            return self._end("Timed out")
        if time.ticks_diff(now, self.retry) < 0:
            return True
        import pn532
        reader = pn532.PN532(term.nfc_stream, term.clock)
        why = got = None
        try:
            if not self.tg:
                tg = reader.detect()
                if tg < 0:
                    reader.release(-tg)
                    why = "Not supported"
                elif tg == 0:
                    self.retry = time.ticks_add(now, _TAP_MS)
                    return True
                else:
                    self.tg = tg
                    self._show("Reading card", "Hold it still")
            if why is None:
                got = records(reader, self.tg, self.amount, term)
        except pn532.CardGone:
            self.tg = 0
            self.retry = time.ticks_add(now, _TAP_MS)
            self._show("Card removed,", "tap again")
            return True
        except pn532.ReaderError:
            why = "Reader error"
        except CardError as e:
            why = e.args[0]
        finally:
            if self.tg and self.tg > 0 and (why is not None or got is not None):
                try:
                    reader.release(self.tg)   # the card is let go: read, or refused
                except (pn532.ReaderError, pn532.CardGone):
                    pass
            reader.wipe()
        if got is None:   # refused (why says how)
            return self._end(why or "Reader error")
        # the reader's code and buffers leave before the card's objects are put together:
        # the end of the read is the visit's tightest heap (docs/firmware-memory.md)
        reader = pn532 = None
        sys.modules.pop("pn532", None)
        gc.collect()
        try:
            self.then = (assemble(got[0], got[1]), self.amount)
        except CardError as e:
            return self._end(e.args[0])
        return False

    def _show(self, line1, line2):
        t = self.lines
        self.term.display.show(t[0], t[1], t[2], line1, line2, "", "", "X Cancel")

    def _end(self, why):
        self.term.keys.flush()
        self.notice_until = time.ticks_add(self.term.clock(), _SHOW_MS)
        self.term.display.show("CONTACTLESS", "", why, "", "", "Insert card")
        return True

    # -- the rest of the visit contract: nothing on the link is this visit's --

    def on_message(self, mtype, body):
        return False

    def on_error(self, fields):
        return False

    def on_link_failed(self, mtype):
        pass

    def wipe(self):
        self.then = None


class CardError(Exception):
    pass


def read(card_reader, tg, amount, term):
    """Read the card at target tg of card_reader (pn532.PN532) for a purchase of `amount`
    minor units of settings.CURRENCY, or a balance inquiry (amount None), at the
    terminal `term` (its contactless CVM limit): (PAN, expiry, service code, masked PAN,
    ICC data). Raises CardError, pn532.CardGone or pn532.ReaderError. Read.step runs its
    two halves with the reader's code dropped between them."""
    return assemble(*records(card_reader, tg, amount, term))


def records(card_reader, tg, amount, term):
    """The card's objects and the terminal's data, (card, data), as the card gave them
    through the APDUs of the read; raises as read() does, the track 2 and PAN wiped."""
    purchase = amount is not None
    # terminal data for the PDOL and the ICC data; numeric ones as packed BCD
    data = {
        0x9F02: _digits(amount or 0, 6), 0x9F03: bytes(6), 0x5F2A: _digits(settings.CURRENCY, 2),
        0x9F1A: b"\x01\x56",          # terminal country, ISO 3166 numeric: China
        0x95: bytes(5), 0x9C: b"\x00" if purchase else b"\x31",   # purchase, balance
        0x9F37: os.urandom(4), 0x9F35: b"\x21",   # attended, online only
        # TTQ (EMV Book C-3 A.2): qVSDC, online PIN; online cryptogram required; CVM
        # required above the contactless CVM limit
        0x9F66: b"\x24\xc0\x00\x00" if purchase and amount > term.cvm_limit
        else b"\x24\x80\x00\x00",
    }
    t = wallclock.local_now()
    if t is None:
        data[0x9A] = bytes(3)
    else:
        if time.gmtime(0)[0] == 2000:   # the port's epoch: 2000 on the ESP32, 1970 on unix
            t -= 946684800
        t = time.gmtime(t)
        data[0x9A] = _digits((t[0] % 100) * 10000 + t[1] * 100 + t[2], 3)   # YYMMDD
    card = {0x84: None, 0x9F26: None, 0x9F27: None, 0x9F10: None, 0x9F36: None,
            0x82: None, 0x94: None, 0x57: None, 0x5A: None, 0x5F24: None, 0x5F34: None,
            0x8C: None}
    try:
        # the PPSE: among its entries (BF0C > 61) the terminal takes, the highest
        # priority (87: 1 highest, none or 0 last); for equal priorities the terminal's
        # order: UnionPay debit, credit (QuickPass), Visa (payWave), Mastercard
        try:
            r = _command(card_reader, tg, b"\x00\xa4\x04\x00\x0e2PAY.SYS.DDF01\x00")
        except CardError:
            raise CardError("Not supported")   # 6A82: no contactless application
        bounds = tlv.collect(r, 0, len(r), {0xBF0C: None})[0xBF0C]
        pos, end = bounds or (0, 0)
        aid = None
        rank = 0
        while pos < end:
            if r[pos] == 0:
                pos += 1
                continue
            tag, _, start, pos = tlv.head(r, pos, end)
            if tag != 0x61:
                continue
            e = tlv.collect(r, start, pos, {0x4F: None, 0x87: None})
            i = 0
            for t in (b"\xa0\x00\x00\x03\x33\x01\x01\x01", b"\xa0\x00\x00\x03\x33\x01\x01\x02",
                      b"\xa0\x00\x00\x00\x03\x10\x10", b"\xa0\x00\x00\x00\x04\x10\x10"):
                if e[0x4F] is not None and e[0x4F][:len(t)] == t:
                    p = e[0x87][0] & 0x0F if e[0x87] else 0
                    if aid is None or (p or 16) * 8 + i < rank:
                        aid = bytes(e[0x4F])
                        rank = (p or 16) * 8 + i
                i += 1
        if aid is None:
            raise CardError("Not supported")
        card[0x84] = aid
        r = _command(card_reader, tg, b"\x00\xa4\x04\x00" + bytes((len(aid),)) + aid + b"\x00")
        fci = tlv.collect(r, 0, len(r), {0x84: None, 0x9F38: None})
        if fci[0x84] is not None:
            card[0x84] = fci[0x84]
        pdol = _build(fci[0x9F38], data)
        r = _command(card_reader, tg, b"\x80\xa8\x00\x00" + bytes((len(pdol) + 2, 0x83, len(pdol)))
                     + pdol + b"\x00")
        if len(r) and r[0] == 0x80:   # format 1: AIP and AFL
            _, _, start, end = tlv.head(r, 0, len(r))
            if end - start < 2 or (end - start - 2) % 4:
                raise CardError("Card read error")
            card[0x82] = bytearray(r[start:start + 2])
            card[0x94] = bytearray(r[start + 2:end])
        else:                         # format 2: 77 with tagged objects
            tlv.collect(r, 0, len(r), card)
        afl = card[0x94] or b""
        count = 0
        for i in range(0, len(afl) - 3, 4):
            sfi = afl[i] >> 3
            if not 0 < sfi < 31 or afl[i + 1] == 0 or afl[i + 2] < afl[i + 1]:
                raise CardError("Card read error")
            for rec in range(afl[i + 1], afl[i + 2] + 1):
                count += 1
                if count > 16:
                    raise CardError("Card read error")
                r = _command(card_reader, tg, bytes((0, 0xB2, rec, sfi << 3 | 4, 0)))
                tlv.collect(r, 0, len(r), card)
        if card[0x9F26] is None and card[0x8C] is not None:
            pdol = _build(card[0x8C], data)
            r = _command(card_reader, tg, b"\x80\xae\x80\x00" + bytes((len(pdol),)) + pdol
                         + b"\x00")
            if len(r) and r[0] == 0x80:   # format 1: CID, ATC, AC, IAD
                _, _, start, end = tlv.head(r, 0, len(r))
                if end - start < 11:
                    raise CardError("Card read error")
                card[0x9F27] = bytearray(r[start:start + 1])
                card[0x9F36] = bytearray(r[start + 1:start + 3])
                card[0x9F26] = bytearray(r[start + 3:start + 11])
                card[0x9F10] = bytearray(r[start + 11:end])
            else:
                tlv.collect(r, 0, len(r), card)
        return card, data
    except tlv.TLVError:
        _forget(card)
        raise CardError("Card read error")
    except Exception:
        _forget(card)
        raise


def assemble(card, data):
    """read()'s answer from records()'s; CardError for a card whose objects do not make
    one. The track 2 and PAN objects are wiped whatever happens."""
    try:
        for tag in (0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x57):   # mandatory
            if not card[tag]:
                raise CardError("Card read error")
        pan, expiry, code = parse_track2(card[0x57], card[0x5A])
        v = card[0x5F24]
        if v is not None and len(v) == 3:   # YYMMDD
            expiry = "".join(chr(48 + (v[i // 2] >> 4 if i % 2 == 0 else v[i // 2] & 0x0F))
                             for i in range(4))
        icc = bytearray()
        for tag in (0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A,
                    0x9F1A, 0x9F37, 0x84, 0x5F34):   # docs/protocol.md, key 19, this order
            v = card.get(tag) or data.get(tag)
            if v is not None:
                if len(v) > 32:   # 9F10's most; a length the one byte below can say
                    raise CardError("Card read error")
                icc += (tag.to_bytes(2, "big") if tag > 0xFF else bytes((tag,)))
                icc += bytes((len(v),))
                icc += v
        if len(icc) > 255:
            raise CardError("Card read error")
        return (pan, expiry, code, pan[:6] + "*" * (len(pan) - 10) + pan[-4:], bytes(icc))
    finally:
        _forget(card)


def _forget(card):
    # only this module sees the track 2 equivalent and the PAN object
    for v in (card[0x57], card[0x5A]):
        if v is not None:
            wipe(v)


def _command(card_reader, tg, data):
    """The card's answer to the APDU `data`, without SW1 SW2 (a copy); 61xx fetched
    with GET RESPONSE."""
    r = card_reader.apdu(tg, data)
    for _ in range(2):
        if len(r) < 2:
            raise CardError("Card read error")
        sw1 = r[-2]
        if sw1 == 0x61:
            r = card_reader.apdu(tg, b"\x00\xc0\x00\x00" + bytes((r[-1],)))
            continue
        if sw1 == 0x90 and r[-1] == 0:
            return bytes(r[:-2])
        break
    # 6A82 to the SELECT: no application of ours on this card
    raise CardError("Not supported" if sw1 == 0x6A else "Card read error")


def _build(body, data):
    """The data a DOL (`body`: tag, length pairs) asks for: the terminal's values, zeros for
    what it does not know; numeric ones cut or padded on the left, the rest on the
    right (EMV Book 3 5.4)."""
    out = bytearray()
    pos = 0
    end = len(body) if body else 0
    while pos < end:
        tag = body[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            for _ in range(2):
                if pos >= end:
                    raise CardError("Card read error")
                b = body[pos]
                pos += 1
                tag = tag << 8 | b
                if not b & 0x80:
                    break
            else:
                raise CardError("Card read error")
        if pos >= end:
            raise CardError("Card read error")
        n = body[pos]
        pos += 1
        v = data.get(tag) or b""
        pad = bytes(n - len(v)) if n > len(v) else b""
        if tag in (0x9F02, 0x9F03, 0x5F2A, 0x9F1A, 0x9A, 0x9C):
            v = pad + v
            out += v[len(v) - n:]
        else:
            out += (v + pad)[:n]
        if len(out) > 250:
            raise CardError("Card read error")
    return out


def parse_track2(track, pan):
    """(PAN, expiry YYMM, service code) from the track 2 equivalent (57: PAN, separator
    D, YYMM, service code, discretionary data, F padding), checked against 5A when the
    card has it: 12 to 19 digits, Luhn (ISO/IEC 7812-1)."""
    # nibbles of the first 14 bytes only (19 digits at most before the separator): the
    # discretionary data after them never becomes a string
    digits = bytearray()
    for b in track[:14]:
        digits.append(b >> 4)
        digits.append(b & 0x0F)
    sep = 0
    while sep < len(digits) and digits[sep] != 0x0D:
        sep += 1
    rest = digits[sep + 1:sep + 8]
    total = 0
    for i in range(sep):
        d = digits[sep - 1 - i]
        if i & 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    number = "".join(chr(48 + d) for d in digits[:sep + 8] if d < 10)
    wipe(digits)
    if not 12 <= sep <= 19 or len(rest) != 7 or len(number) != sep + 7 or total % 10:
        raise CardError("Card read error")
    if pan is not None:   # 5A: the same digits, F padding after them
        if len(pan) * 2 < sep:
            raise CardError("Card read error")
        for i in range(len(pan) * 2):
            d = pan[i >> 1] >> 4 if not i & 1 else pan[i >> 1] & 0x0F
            if d != (ord(number[i]) - 48 if i < sep else 0x0F):
                raise CardError("Card read error")
    return number[:sep], number[sep:sep + 4], number[sep + 4:]


def _digits(value, n):
    """value as n bytes of packed BCD, right-aligned."""
    out = bytearray(n)
    for i in range(n - 1, -1, -1):
        out[i] = value % 10 | (value // 10 % 10) << 4
        value //= 100
    return bytes(out)
