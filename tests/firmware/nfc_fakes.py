# A PN532 and an EMV card at the byte level, for the firmware tests (CPython and
# MicroPython alike): the chip answers the host's frames as UM0701-02 says, the card
# answers APDUs from a table, and each can be told to fail.
# Its own frame writer, not pn532.encode: a visit under test unloads pn532, and a
# function kept from it would keep a second copy of the module in the 64 KiB heap.

ACK = b"\x00\x00\xff\x00\xff\x00"


def chip_frame(cmd, data):
    """A D5 frame answering command `cmd` (cmd + 1) with `data` (UM0701-02 6.2.1)."""
    body = bytes((0xD5, cmd + 1)) + bytes(data)
    n = len(body)
    if n > 255:
        head = bytes((0, 0, 0xFF, 0xFF, 0xFF, n >> 8, n & 0xFF, -((n >> 8) + n) & 0xFF))
    else:
        head = bytes((0, 0, 0xFF, n, -n & 0xFF))
    return head + body + bytes((-sum(body) & 0xFF, 0))


def tlv(tag, *values):
    """BER-TLV of tag (hex str) over the values (bytes) put together."""
    v = b"".join(values)
    if len(v) < 0x80:
        n = bytes((len(v),))
    elif len(v) < 0x100:
        n = bytes((0x81, len(v)))
    else:
        n = bytes((0x82, len(v) >> 8, len(v) & 0xFF))
    return bytes.fromhex(tag) + n + v


class FakeChip:
    """The reader's UART seen from the board: write() takes the board's frames, read()
    and readinto() give the chip's ACKs and answers (None when there is nothing).

    card: an object with apdu(bytes) -> bytes (data and SW), or None (empty field).
    Faults: silent (no byte at all), garbage (noise instead of answers), bad_dcs (the
    next n answers have a wrong checksum), gone_after (the card leaves after that many
    APDUs: the chip answers status 0x01, time-out), not_iso_dep (a tag without ISO/IEC
    14443-4)."""

    def __init__(self, card=None, asleep=False):
        self.card = card
        self.raw = b""           # every byte the board wrote
        self.pending = b""
        self.last = b""
        self.out = bytearray()
        self.commands = []       # (cmd, data) of every command the board sent
        self.woken = not asleep
        self.silent = False
        self.garbage = False
        self.bad_dcs = 0
        self.gone_after = None
        self.not_iso_dep = False
        self.apdus = 0

    def write(self, data):
        self.pending += bytes(data)
        self.raw += bytes(data)
        self._parse()
        return len(data)

    def readinto(self, buf):
        if not self.out:
            return None
        n = min(len(buf), len(self.out))
        buf[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

    def _parse(self):
        p = self.pending
        while True:
            if not self.woken:
                i = p.find(b"\x55")
                if i < 0:
                    return
                self.woken = True
            i = p.find(b"\x00\xff")
            if i < 0 or len(p) < i + 4:
                return
            if p[i + 2] == 0xFF and p[i + 3] == 0xFF:     # extended
                if len(p) < i + 7:
                    return
                n = p[i + 4] << 8 | p[i + 5]
                start = i + 7
            elif p[i + 2] == 0xFF and p[i + 3] == 0x00:   # NACK: send the last answer again
                p = self.pending = p[i + 4:]
                self._answer(self.last)
                continue
            else:
                n = p[i + 2]
                start = i + 4
            if len(p) < start + n + 1:
                return
            body = p[start:start + n]
            p = self.pending = p[start + n + 1:]
            if n == 0 and body == b"":
                continue
            if body[0] != 0xD4:
                continue
            self.commands.append((body[1], body[2:]))
            if self.silent:
                continue
            if self.garbage:
                self.out.extend(b"\x13\x00\xff\x07\x00\x37\x00\x00\xff\x02\x05\xd5")
                continue
            self.out.extend(ACK)
            answer = self._handle(body[1], body[2:])
            self.last = answer
            self._answer(answer)

    def _answer(self, answer):
        if self.bad_dcs:
            self.bad_dcs -= 1
            self.out.extend(answer[:-2] + bytes(((answer[-2] + 1) & 0xFF,)) + b"\x00")
        else:
            self.out.extend(answer)

    def _handle(self, cmd, data):
        if cmd == 0x4A:
            if self.card is None:
                return chip_frame(cmd, b"\x00")
            sel = b"\x00" if self.not_iso_dep else b"\x20"
            return chip_frame(cmd, b"\x01\x01\x00\x04" + sel + b"\x04\x01\x02\x03\x04")
        if cmd == 0x40:
            self.apdus += 1
            if self.card is None or (self.gone_after is not None and self.apdus > self.gone_after):
                return chip_frame(cmd, b"\x01")
            return chip_frame(cmd, b"\x00" + self.card.apdu(data[1:]))
        return chip_frame(cmd, b"\x00" if cmd == 0x52 else b"")


# a Visa card as qVSDC writes it: the cryptogram in the GPO's answer (format 2), the
# PAN, track 2 equivalent and expiry in one record
PAN = "4761730000000011"
VISA = b"\xa0\x00\x00\x00\x03\x10\x10"
UNIONPAY_DEBIT = b"\xa0\x00\x00\x03\x33\x01\x01\x01"
OK = b"\x90\x00"


def ppse_answer(*entries):
    """entries: (AID, priority or None)."""
    apps = b"".join(tlv("61", tlv("4F", aid), tlv("87", bytes((p,))) if p else b"")
                    for aid, p in entries)
    return tlv("6F", tlv("84", b"2PAY.SYS.DDF01"), tlv("A5", tlv("BF0C", apps))) + OK


class FakeCard:
    """APDU -> answer; `answers` maps an APDU's first bytes (hex, no spaces) to the
    answer. The default is a Visa card whose PDOL asks for 9F66, 9F02, 9F03, 9F1A, 95,
    5F2A, 9A, 9C, 9F37 and DF8116 (unknown to the terminal)."""

    PDOL = bytes.fromhex("9F6604 9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704 DF811601")

    def __init__(self, answers=None):
        t2 = bytes.fromhex(PAN + "d2812201" + "0000000000000f")
        self.answers = {
            "00a404000e": ppse_answer((VISA, 1)),
            "00a4040007a0000000031010": tlv("6F", tlv("84", VISA),
                                            tlv("A5", tlv("50", b"VISA"),
                                                tlv("9F38", self.PDOL))) + OK,
            "80a80000": tlv("77", tlv("82", b"\x20\x00"), tlv("94", b"\x08\x01\x01\x00"),
                            tlv("9F36", b"\x00\x07"), tlv("9F26", bytes(range(1, 9))),
                            tlv("9F27", b"\x80"),
                            tlv("9F10", bytes.fromhex("06011203A00000"))) + OK,
            "00b2010c": tlv("70", tlv("57", t2), tlv("5A", bytes.fromhex(PAN)),
                            tlv("5F24", b"\x28\x12\x31"), tlv("5F34", b"\x01")) + OK,
        }
        for k, v in (answers or {}).items():
            self.answers[k] = v
        self.seen = []

    def apdu(self, apdu):
        self.seen.append(bytes(apdu))
        h = apdu.hex()
        best = ""
        for k in self.answers:
            if h.startswith(k) and len(k) > len(best):
                best = k
        if not best:
            return b"\x6d\x00"
        return self.answers[best]
