"""A tapped card's ICC data (request key 19, ISO 8583 field 55) and its cryptograms,
issuer side: the BER-TLV read with pyemv's decoder, the cryptogram version chosen from
the application and the issuer application data, the ARQC and the ARPC computed with
pyemv's CVN classes.

    icc = IccData.parse(blob)           # IccDataError: a clear text, never a value
    icc.cvn                             # "visa-10", "visa-18", "mastercard-16", ...
    cvn = icc.cvn_class(ac, smi, smc, pan)      # the key store does this (keystore.py)
    arqc_of(cvn, icc), arpc_of(cvn, icc, "00")

Cryptogram versions (docs/issuer.md, "Card cryptograms"):
- Visa (AID A000000003...): issuer application data 06 | DKI | CVN | CVR (4 bytes),
  CVN 0A (10): the ICC master key itself, Visa padding, CVR in the input, ARPC method 1;
  CVN 12 (18): a session key per ATC (EMV common session key), the whole IAD in the
  input, EMV padding, ARPC method 2 with a card status update.
- Mastercard (A000000004...): IAD DKI | CVN | CVR (6 bytes) | DAC (2) | counters (8),
  CVN 10 (16): session key from ATC and unpredictable number (Mastercard SKD), CVR in
  the input; CVN 11 (17): the same with the counters; both ARPC method 1.
- UnionPay (A000000333...): the Visa IAD layout with CVN 0A, computed as Visa CVN 10:
  QuickPass cards personalised for this issuer use that derivation.
Every ICC master key is derived from the issuer master key by EMV option A (Book 2,
A1.4.1) from the PAN and the PAN sequence number (5F34, 00 when absent).

The ICC data is never logged nor stored: it may hold what the terminal chose to put in
it, the PAN (5A) or the track 2 equivalent (57) among them. Errors name a tag, never a
value.
"""
import datetime
import warnings
from dataclasses import dataclass, field

from cryptography.utils import CryptographyDeprecationWarning
from pyemv import cvn as _cvn
from pyemv import tlv as _tlv

# EMV's keys are double-length (two-key) TDES keys, and ISO 9797-1 MAC algorithm 3
# runs single DES with their halves, as EMV defines them: the notice
# that cryptography will drop them is noise here
warnings.filterwarnings("ignore", message="(Two|Single)-key TripleDES",
                        category=CryptographyDeprecationWarning)

ENTRY_MODE_MAGSTRIPE = 90      # ISO 8583 field 22 positions 1-2
ENTRY_MODE_CONTACTLESS = 7

# tag -> (shortest, longest) value length, bytes (EMV Book 3 Annex A)
TAG_LENGTHS = {
    "9F26": (8, 8),        # application cryptogram (ARQC)
    "9F27": (1, 1),        # cryptogram information data
    "9F10": (1, 32),       # issuer application data
    "9F36": (2, 2),        # application transaction counter
    "82": (2, 2),          # application interchange profile
    "95": (5, 5),          # terminal verification results
    "9A": (3, 3),          # transaction date YYMMDD
    "9C": (1, 1),          # transaction type
    "9F02": (6, 6),        # amount, authorised, n12
    "9F03": (6, 6),        # amount, other (zero when absent)
    "5F2A": (2, 2),        # transaction currency code
    "9F1A": (2, 2),        # terminal country code
    "9F37": (4, 4),        # unpredictable number
    "84": (5, 16),         # dedicated file name: the application's AID
    "5F34": (1, 1),        # PAN sequence number
}
REQUIRED_TAGS = ("9F26", "9F27", "9F10", "9F36", "82", "95", "9A", "9C", "9F02", "5F2A",
                 "9F1A", "9F37", "84")
TYPE_PURCHASE = 0x00           # 9C, ISO 8583 processing code positions 1-2
TYPE_BALANCE_INQUIRY = 0x31
CID_ARQC = 0x80                # 9F27 bits 8-7 = 10: an authorisation request

# the registered application providers (RID, ISO 7816-5) the issuer has cards of
_VISA, _MASTERCARD, _UNIONPAY = "A000000003", "A000000004", "A000000333"


class IccDataError(ValueError):
    """ICC data the issuer cannot use: a text for the log and the person, no value."""


@dataclass(frozen=True)
class IccData:
    tags: dict = field(repr=False)        # tag (hex, upper case) -> value

    @classmethod
    def parse(cls, blob: bytes) -> "IccData":
        """The ICC data in `blob`: one level of primitive BER-TLV objects, each tag once,
        every tag the cryptogram needs there with its EMV length."""
        seen = []

        def keep(tag, value):
            seen.append(tag)
            return bytes(value)
        try:
            decoded = _tlv.decode(bytes(blob), convert=keep)
        except _tlv.DecodeError as exc:
            raise IccDataError(f"ICC data is not BER-TLV ({exc.msg}, tag {exc.tag[:8]}, "
                               f"offset {exc.offset})") from None
        nested = [tag for tag, value in decoded.items() if isinstance(value, dict)]
        if nested:
            raise IccDataError(f"ICC data: constructed tag {nested[0]} (a flat list of "
                               "data objects expected)")
        twice = sorted({tag for tag in seen if seen.count(tag) > 1})
        if twice:
            raise IccDataError(f"ICC data: tag {twice[0]} more than once")
        missing = [tag for tag in REQUIRED_TAGS if tag not in decoded]
        if missing:
            raise IccDataError(f"ICC data: tag {missing[0]} missing")
        for tag, (low, high) in TAG_LENGTHS.items():
            if tag in decoded and not low <= len(decoded[tag]) <= high:
                raise IccDataError(f"ICC data: tag {tag} is {len(decoded[tag])} bytes, "
                                   f"not {low}" + ("" if low == high else f" to {high}"))
        icc = cls(decoded)
        icc.cvn                                          # IccDataError if none fits
        icc.amount, icc.currency, icc.psn                # BCD checked
        return icc

    def __getitem__(self, tag: str) -> bytes:
        return self.tags[tag]

    def get(self, tag: str, default: bytes = b"") -> bytes:
        return self.tags.get(tag, default)

    @property
    def atc(self) -> int:
        return int.from_bytes(self.tags["9F36"], "big")

    @property
    def arqc(self) -> bytes:
        return self.tags["9F26"]

    @property
    def transaction_type(self) -> int:
        return self.tags["9C"][0]

    @property
    def is_arqc(self) -> bool:
        return self.tags["9F27"][0] & 0xC0 == CID_ARQC

    @property
    def amount(self) -> int:
        return _bcd(self.tags["9F02"], "9F02")

    @property
    def currency(self) -> int:
        return _bcd(self.tags["5F2A"], "5F2A")

    @property
    def psn(self) -> str:
        """The PAN sequence number, two digits ("00" when the card has none)."""
        psn = _bcd(self.get("5F34", bytes(1)), "5F34")
        return f"{psn:02d}"

    @property
    def cvn(self) -> str:
        """The cryptogram version: the application's scheme and the IAD's CVN byte."""
        aid, iad = self.tags["84"].hex().upper(), self.tags["9F10"]
        if aid.startswith((_VISA, _UNIONPAY)):
            if len(iad) >= 7 and iad.startswith(b"\x06"):   # Visa IAD formats 0, 1, 3
                version = {0x0A: "visa-10", 0x12: "visa-18"}.get(iad[2])
                if version and (aid.startswith(_VISA) or version == "visa-10"):
                    return version
        elif aid.startswith(_MASTERCARD) and len(iad) >= 18:
            version = {0x10: "mastercard-16", 0x11: "mastercard-17"}.get(iad[1])
            if version:
                return version
        raise IccDataError("ICC data: no cryptogram version this issuer verifies "
                           "(application 84 and issuer application data 9F10)")

    @property
    def date(self) -> "datetime.date":
        """The transaction date the card signed (9A, YYMMDD, years 2000..2099)."""
        try:
            return datetime.date(2000 + _bcd(self.tags["9A"][:1], "9A"),
                                 _bcd(self.tags["9A"][1:2], "9A"),
                                 _bcd(self.tags["9A"][2:], "9A"))
        except ValueError:
            raise IccDataError("ICC data: tag 9A is not a date") from None

    def pan_differs(self, pan: str) -> "str | None":
        """The tag (5A, the PAN; 57, the track 2 equivalent) of a card number in the ICC
        data that is not `pan`, the request's card: None if none is there or each is
        `pan`. Never the value."""
        if "5A" in self.tags and self.tags["5A"].hex().upper().rstrip("F") != pan:
            return "5A"
        if "57" in self.tags and self.tags["57"].hex().upper().partition("D")[0] != pan:
            return "57"
        return None

    def cvn_class(self, iss_mk_ac: bytes, iss_mk_smi: bytes, iss_mk_smc: bytes, pan: str):
        """pyemv's object for this card's cryptogram version, its ICC master keys
        derived from the issuer master keys given (option A, PAN and 5F34)."""
        return CVN_CLASSES[self.cvn](iss_mk_ac=iss_mk_ac, iss_mk_smi=iss_mk_smi,
                                     iss_mk_smc=iss_mk_smc, pan=pan, psn=self.psn)


CVN_CLASSES = {"visa-10": _cvn.VisaCVN10, "visa-18": _cvn.VisaCVN18,
               "mastercard-16": _cvn.MasterCardCVN16, "mastercard-17": _cvn.MasterCardCVN17}


def _bcd(value: bytes, tag: str) -> int:
    digits = value.hex()
    if not digits.isdigit():
        raise IccDataError(f"ICC data: tag {tag} is not BCD digits")
    return int(digits)


def ac_input(icc: IccData) -> dict:
    """The data objects every version's cryptogram covers (EMV Book 2 8.1.1), by
    pyemv's names; 9F03 is zero when the terminal sent none."""
    return dict(tag_9f02=icc["9F02"], tag_9f03=icc.get("9F03", bytes(6)),
                tag_9f1a=icc["9F1A"], tag_95=icc["95"], tag_5f2a=icc["5F2A"],
                tag_9a=icc["9A"], tag_9c=icc["9C"], tag_9f37=icc["9F37"],
                tag_82=icc["82"], tag_9f36=icc["9F36"])


def arqc_of(cvn, icc: IccData) -> bytes:
    """The ARQC the card should have computed over `icc`, with pyemv `cvn`."""
    iad = icc["9F10"]
    version = icc.cvn
    if version == "visa-10":
        return cvn.generate_ac(**ac_input(icc), cvr=iad[3:7])
    if version == "visa-18":
        return cvn.generate_ac(**ac_input(icc), tag_9f10=iad)
    if version == "mastercard-16":
        return cvn.generate_ac(**ac_input(icc), cvr=iad[2:8])
    return cvn.generate_ac(**ac_input(icc), cvr=iad[2:8], counters=iad[10:18])


# Visa card status update (CVN 18, ARPC method 2), byte 2 bit 8: the issuer approves
# the online transaction (Visa Integrated Circuit Card Specification, Appendix A)
_CSU_APPROVED = bytes.fromhex("00008000")
_CSU_DECLINED = bytes(4)


def arpc_of(cvn, icc: IccData, response_code: str) -> bytes:
    """The ARPC answering the card's ARQC with `response_code` (ISO 8583 field 39):
    method 1 with the code as the 2-byte authorisation response code, or method 2 with
    a card status update saying approved or declined."""
    if icc.cvn == "visa-18":
        csu = _CSU_APPROVED if response_code == "00" else _CSU_DECLINED
        return cvn.generate_arpc(tag_9f26=icc.arqc, tag_9f36=icc["9F36"], csu=csu)
    return cvn.generate_arpc(tag_9f26=icc.arqc, arpc_rc=response_code.encode("ascii"))
