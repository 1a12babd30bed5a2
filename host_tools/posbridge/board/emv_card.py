"""A virtual contactless EMV card: the APDUs a payment card answers in a contactless
transaction, with real cryptograms, for the PN532 simulator (pn532_sim.py), the
emulator and the tests.

    card = EmvCard.personalise(keys, pan, expiry="3012", profile="visa-18", psn="01")
    card.apdu(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
    # -> FCI of the PPSE + 90 00

What it answers (EMV Book 1 11, Book 3 6.5; EMV Contactless Book C-3 for the flow):
  SELECT 2PAY.SYS.DDF01  FCI 6F: 84 name, A5 { BF0C { 61 { 4F AID, 50 label, 87 } } }
  SELECT its AID         FCI 6F: 84 AID, A5 { 50 label, 87, 9F38 PDOL, 5F2D }
  GET PROCESSING OPTIONS response format 2, 77 { 82 AIP, 94 AFL, 9F36 ATC, 9F26 ARQC,
                         9F27, 9F10 IAD }: the ATC goes up by one, the ARQC is computed
                         over the PDOL data as the card's cryptogram version says
                         (Visa, UnionPay: the qVSDC way); a Mastercard gives 77 { 82,
                         94 } only and its cryptogram at GENERATE AC
  READ RECORD SFI 1      record 1: 70 { 57 track 2 equivalent, 5F20 name (, 8C CDOL1) }
                         record 2: 70 { 5A PAN, 5F24 expiry, 5F34 PAN sequence, 5F28 }
  GENERATE AC (ARQC)     Mastercard: 77 { 9F27, 9F36, 9F26, 9F10 } over the CDOL1 data
  anything else          the status words a card gives (6A82, 6A83, 6985, 6700, 6D00,
                         6E00)

The cryptogram is computed here with pyemv's primitives (session key derivation and
ISO 9797-1 MAC algorithm 3) from the card's own ICC master key, the way the chip does;
the issuer checks it with pyemv's CVN classes from its issuer master key
(issuer/cryptogram.py): two paths that must agree.

`faults` make a card answer as a broken one does: "ppse_6a82" (no PPSE), "truncated"
(a length past the end of its FCI), "deep_nesting" (templates nested beyond any
parser's depth), "bad_pdol_length" (a PDOL whose lengths overrun it).
"""
from dataclasses import dataclass, field

from pyemv import ac as _ac
from pyemv import kd as _kd

PPSE = b"2PAY.SYS.DDF01"
SW_OK = b"\x90\x00"
SW_NOT_FOUND = b"\x6a\x82"            # file or application not found
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_CONDITIONS = b"\x69\x85"           # conditions of use not satisfied
SW_WRONG_LENGTH = b"\x67\x00"
SW_INS = b"\x6d\x00"
SW_CLA = b"\x6e\x00"

# profile -> (AID, label, priority); the cryptogram version is the profile's
PROFILES = {
    "visa-10": ("A0000000031010", "VISA CREDIT", 1),
    "visa-18": ("A0000000031010", "VISA CREDIT", 1),
    "mastercard-16": ("A0000000041010", "MASTERCARD", 1),
    "mastercard-17": ("A0000000041010", "MASTERCARD", 1),
    # UnionPay QuickPass cards of this issuer compute as Visa CVN 10 (cryptogram.py)
    "unionpay-10": ("A000000333010101", "UNIONPAY DEBIT", 1),
}
# The PDOL every profile asks for: tag, length (EMV Book 3 5.4). 9F66 terminal
# transaction qualifiers first, as a qVSDC card asks.
PDOL = (("9F66", 4), ("9F02", 6), ("9F03", 6), ("9F1A", 2), ("95", 5), ("5F2A", 2),
        ("9A", 3), ("9C", 1), ("9F37", 4))
# The CDOL1 of a Mastercard: what its GENERATE AC covers
CDOL1 = PDOL[1:]
AIP = bytes.fromhex("2000")           # cardholder verification supported, no ODA
SFI = 1
AFL = bytes([SFI << 3, 1, 2, 0])      # SFI 1, records 1 to 2, none for offline auth
FAULTS = ("ppse_6a82", "truncated", "deep_nesting", "bad_pdol_length")


def _tlv_bytes(tag: str, value: bytes) -> bytes:
    """One BER-TLV data object; a constructed tag's value is its encoded content."""
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else \
        bytes([0x82]) + n.to_bytes(2, "big")
    return bytes.fromhex(tag) + length + bytes(value)


def _dol(entries) -> bytes:
    return b"".join(bytes.fromhex(tag) + bytes([length]) for tag, length in entries)


@dataclass
class EmvCard:
    pan: str = field(repr=False)
    expiry: str                          # YYMM
    profile: str
    icc_mk_ac: bytes = field(repr=False)
    psn: str = "00"
    name: str = "CARDHOLDER"
    service_code: str = "201"
    atc: int = 0                         # the last ATC used; the next GPO uses atc + 1
    faults: tuple = ()
    selected: "str | None" = None        # the AID selected, None before
    gpo_done: bool = False               # GET PROCESSING OPTIONS answered since it
    apdus: int = 0                       # APDUs answered since the tap

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(f"card profile {self.profile!r}: one of {', '.join(PROFILES)}")
        unknown = set(self.faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"card fault {sorted(unknown)[0]!r}: one of {', '.join(FAULTS)}")

    @classmethod
    def personalise(cls, keys, pan: str, *, expiry: str, profile: str, psn: str = "00",
                    name: str = "CARDHOLDER", faults=()) -> "EmvCard":
        """A card issued by the issuer whose key store is `keys`: its ICC master key
        for cryptograms derived there from the issuer master key of its range."""
        icc_mk_ac = keys.icc_master_keys(pan, psn)[0]
        return cls(pan, expiry, profile, icc_mk_ac, psn=psn, name=name, faults=tuple(faults))

    @property
    def mastercard(self) -> bool:
        return self.profile.startswith("mastercard")

    @property
    def aid(self) -> bytes:
        return bytes.fromhex(PROFILES[self.profile][0])

    def __repr__(self):
        return f"EmvCard({self.profile}, PAN ending {self.pan[-4:]}, ATC {self.atc})"

    # ---- APDUs -----------------------------------------------------------------------

    def tap(self):
        """The card enters the field: powered afresh, nothing selected."""
        self.selected = None
        self.gpo_done = False
        self.apdus = 0

    def apdu(self, command: bytes) -> bytes:
        """The response (data and status words) to one command APDU."""
        self.apdus += 1
        command = bytes(command)
        if len(command) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = command[:4]
        data = b""
        if len(command) > 5:
            lc = command[4]
            data = command[5:5 + lc]
            if len(data) != lc or len(command) > 5 + lc + 1:
                return SW_WRONG_LENGTH
        if (cla, ins) == (0x00, 0xA4):
            return self._select(p1, p2, data) if p1 == 0x04 else SW_NOT_FOUND
        if (cla, ins) == (0x80, 0xA8):
            return self._gpo(data)
        if (cla, ins) == (0x00, 0xB2):
            return self._read_record(p1, p2)
        if (cla, ins) == (0x80, 0xAE) and self.mastercard:
            return self._generate_ac(p1, data)
        if cla not in (0x00, 0x80):
            return SW_CLA
        return SW_INS

    def _select(self, p1, p2, name: bytes) -> bytes:
        if name == PPSE:
            if "ppse_6a82" in self.faults:
                return SW_NOT_FOUND
            aid, label, priority = PROFILES[self.profile]
            entry = (_tlv_bytes("4F", bytes.fromhex(aid)) + _tlv_bytes("50", label.encode())
                     + _tlv_bytes("87", bytes([priority])))
            fci = _tlv_bytes("6F", _tlv_bytes("84", PPSE) + _tlv_bytes(
                "A5", _tlv_bytes("BF0C", _tlv_bytes("61", entry))))
            return self._faulty(fci) + SW_OK
        if name and self.aid.startswith(name):          # partial selection allowed
            aid, label, priority = PROFILES[self.profile]
            self.selected = aid
            pdol = _dol(PDOL)
            if "bad_pdol_length" in self.faults:
                pdol = pdol[:-1] + b"\xff"
            prop = (_tlv_bytes("50", label.encode()) + _tlv_bytes("87", bytes([priority]))
                    + _tlv_bytes("9F38", pdol) + _tlv_bytes("5F2D", b"enzh"))
            fci = _tlv_bytes("6F", _tlv_bytes("84", self.aid) + _tlv_bytes("A5", prop))
            return self._faulty(fci) + SW_OK
        return SW_NOT_FOUND

    def _faulty(self, fci: bytes) -> bytes:
        if "truncated" in self.faults:
            # the outer template claims more bytes than follow
            return fci[:1] + bytes([min(fci[1] + 9, 0x7F)]) + fci[2:]
        if "deep_nesting" in self.faults:
            nested = b"\x9f\x36\x02\x00\x01"
            for _ in range(60):
                nested = b"\xa5" + bytes([len(nested)]) + nested if len(nested) < 127 \
                    else b"\xa5\x81" + bytes([len(nested)]) + nested
            return nested
        return fci

    def _gpo(self, data: bytes) -> bytes:
        if self.selected is None:
            return SW_CONDITIONS
        total = sum(length for _, length in PDOL)
        if len(data) != 2 + total or data[0] != 0x83 or data[1] != total:
            return SW_WRONG_LENGTH
        self.gpo_done = True
        if self.mastercard:
            return _tlv_bytes("77", _tlv_bytes("82", AIP) + _tlv_bytes("94", AFL)) + SW_OK
        cryptogram = self._cryptogram(_dol_values(PDOL, data[2:]))
        if cryptogram is None:
            return SW_CONDITIONS                       # the counter is spent: card dead
        return _tlv_bytes("77", _tlv_bytes("82", AIP) + _tlv_bytes("94", AFL)
                          + cryptogram) + SW_OK

    def _generate_ac(self, p1: int, data: bytes) -> bytes:
        if not self.gpo_done:
            return SW_CONDITIONS
        if len(data) != sum(length for _, length in CDOL1):
            return SW_WRONG_LENGTH
        # an online-only card answers any request for a cryptogram with an ARQC
        cryptogram = self._cryptogram(_dol_values(CDOL1, data))
        self.gpo_done = False
        if cryptogram is None:
            return SW_CONDITIONS
        return _tlv_bytes("77", cryptogram) + SW_OK

    def _cryptogram(self, values: dict) -> "bytes | None":
        """9F36, 9F26, 9F27, 9F10 of a new ARQC over `values`; None once the ATC is
        spent."""
        if self.atc >= 0xFFFF:
            return None
        self.atc += 1
        atc = self.atc.to_bytes(2, "big")
        iad = self._iad()
        arqc = self._arqc(values, atc, iad)
        return (_tlv_bytes("9F36", atc) + _tlv_bytes("9F26", arqc)
                + _tlv_bytes("9F27", b"\x80") + _tlv_bytes("9F10", iad))

    def _read_record(self, record: int, p2: int) -> bytes:
        if self.selected is None:
            return SW_CONDITIONS
        if p2 != (SFI << 3) | 4:
            return SW_RECORD_NOT_FOUND
        if record == 1:
            body = _tlv_bytes("57", self.track2()) + _tlv_bytes("5F20", self.name.encode())
            if self.mastercard:
                body += _tlv_bytes("8C", _dol(CDOL1))
        elif record == 2:
            body = (_tlv_bytes("5A", _bcd(self.pan)) + _tlv_bytes("5F24", bytes.fromhex(
                self.expiry + "31")) + _tlv_bytes("5F34", bytes.fromhex(self.psn))
                + _tlv_bytes("5F28", bytes.fromhex("0156")))
        else:
            return SW_RECORD_NOT_FOUND
        return _tlv_bytes("70", body) + SW_OK

    def track2(self) -> bytes:
        """Track 2 equivalent data (tag 57): PAN, D, expiry YYMM, service code,
        discretionary data, F-padded (EMV Book 3 Annex A)."""
        return _bcd(f"{self.pan}D{self.expiry}{self.service_code}0000000000")

    # ---- the cryptogram ------------------------------------------------------------

    def _iad(self) -> bytes:
        """Issuer application data (9F10) in the layout of the card's scheme."""
        if self.profile.startswith("mastercard"):
            cvn = 0x10 if self.profile == "mastercard-16" else 0x11
            # DKI, CVN, CVR (6), DAC (2), counters (8)
            return bytes([0x01, cvn]) + bytes.fromhex("A00000000000") + bytes(2) + bytes(8)
        cvn = 0x12 if self.profile == "visa-18" else 0x0A
        # length 06, DKI, CVN, CVR (4): 03 (its length) A0 (ARQC returned) 00 00
        return bytes([0x06, 0x01, cvn]) + bytes.fromhex("03A00000")

    def _arqc(self, v: dict, atc: bytes, iad: bytes) -> bytes:
        """EMV Book 2 8.1: the MAC over amount, other amount, country, TVR, currency,
        date, type, unpredictable number, AIP and ATC, then what the version adds."""
        data = (v["9F02"] + v["9F03"] + v["9F1A"] + v["95"] + v["5F2A"] + v["9A"]
                + v["9C"] + v["9F37"] + AIP + atc)
        if self.profile in ("visa-10", "unionpay-10"):
            # CVN 10: the ICC master key itself, the CVR, Visa padding
            return _ac.generate_ac(self.icc_mk_ac, data + iad[3:7], _ac.PaddingType.VISA, 8)
        if self.profile == "visa-18":
            key = _kd.derive_common_sk(self.icc_mk_ac, atc + bytes(6))
            return _ac.generate_ac(key, data + iad, _ac.PaddingType.EMV, 8)
        key = _kd.derive_common_sk(self.icc_mk_ac, atc + bytes(2) + v["9F37"])
        extra = iad[2:8] + (iad[10:18] if self.profile == "mastercard-17" else b"")
        return _ac.generate_ac(key, data + extra, _ac.PaddingType.EMV, 8)


def _dol_values(dol, data: bytes) -> dict:
    values, at = {}, 0
    for tag, length in dol:
        values[tag] = data[at:at + length]
        at += length
    return values


def _bcd(digits: str) -> bytes:
    """Digits (and D separators) packed two to a byte, F-padded to a whole byte."""
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)
