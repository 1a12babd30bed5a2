"""A terminal's contactless read on the host, for the tests of the virtual card and the
issuer: the APDUs of docs/protocol.md "Contactless" (SELECT PPSE, SELECT AID, GET
PROCESSING OPTIONS with the PDOL data, READ RECORD per AFL entry, GENERATE AC with the
CDOL1 data for a card that gave no cryptogram at GPO), parsed with pyemv's
BER-TLV, and the ICC data a request carries (ISO 8583 field 55's tags)."""
import datetime

from pyemv import tlv

PPSE = b"2PAY.SYS.DDF01"
ICC_TAGS = ("9F26", "9F27", "9F10", "9F36", "82", "95", "9A", "9C", "9F02", "5F2A",
            "9F1A", "9F37", "84", "5F34")
PURCHASE, BALANCE_INQUIRY = 0x00, 0x31


class CardError(Exception):
    pass


def select(name: bytes) -> bytes:
    return bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00"


def split(response: bytes):
    return response[:-2], response[-2:]


def _ok(response: bytes, what: str) -> dict:
    data, sw = split(response)
    if sw != b"\x90\x00":
        raise CardError(f"{what}: {sw.hex().upper()}")
    return tlv.decode(data)


def read_dol(dol: bytes):
    """(tag, length) of each entry of a data object list."""
    entries, at = [], 0
    while at < len(dol):
        end = at + 1
        if dol[at] & 0x1F == 0x1F:
            while dol[end] & 0x80:
                end += 1
            end += 1
        entries.append((dol[at:end].hex().upper(), dol[end]))
        at = end + 1
    return entries


def terminal_data(amount: int, currency: int = 156, kind: int = PURCHASE,
                  unpredictable: bytes = b"\x12\x34\x56\x78", when=None) -> dict:
    when = when or datetime.date(2026, 11, 22)
    return {"9F66": bytes.fromhex("36000000"), "9F02": bytes.fromhex(f"{amount:012d}"),
            "9F03": bytes(6), "9F1A": bytes.fromhex("0156"), "95": bytes(5),
            "5F2A": bytes.fromhex(f"{currency:04d}"), "9A": bytes.fromhex(when.strftime("%y%m%d")),
            "9C": bytes([kind]), "9F37": unpredictable}


def read_card(card, amount: int = 0, currency: int = 156, kind: int = PURCHASE,
              unpredictable: bytes = b"\x12\x34\x56\x78") -> dict:
    """What a terminal keeps of a tap: pan, expiry (YYMM), service code, psn, and the
    ICC data (bytes) of the request."""
    card.tap()
    ppse = _ok(card.apdu(select(PPSE)), "SELECT PPSE")
    aid = ppse["6F"]["A5"]["BF0C"]["61"]["4F"]
    fci = _ok(card.apdu(select(aid)), "SELECT AID")
    values = terminal_data(amount, currency, kind, unpredictable)
    pdol = b"".join(values[tag][:length].rjust(length, b"\x00")
                    for tag, length in read_dol(fci["6F"]["A5"]["9F38"]))
    gpo = _ok(card.apdu(bytes([0x80, 0xA8, 0, 0, len(pdol) + 2, 0x83, len(pdol)]) + pdol
                        + b"\x00"), "GPO")["77"]
    afl, records = gpo["94"], {}
    for at in range(0, len(afl), 4):
        sfi, first, last = afl[at] >> 3, afl[at + 1], afl[at + 2]
        for number in range(first, last + 1):
            records.update(_ok(card.apdu(bytes([0x00, 0xB2, number, (sfi << 3) | 4, 0])),
                               "READ RECORD")["70"])
    if "9F26" not in gpo and "8C" in records:          # the cryptogram at GENERATE AC
        cdol = b"".join(values[tag][:length].rjust(length, b"\x00")
                        for tag, length in read_dol(records["8C"]))
        gpo.update(_ok(card.apdu(bytes([0x80, 0xAE, 0x80, 0x00, len(cdol)]) + cdol
                                 + b"\x00"), "GENERATE AC")["77"])
    track2 = records["57"].hex().upper()
    pan, rest = track2.split("D", 1)
    icc_values = {**values, **gpo, "84": aid, "5F34": records["5F34"]}
    return {"pan": records["5A"].hex().upper().rstrip("F"), "track2_pan": pan,
            "expiry": records["5F24"].hex()[:4], "service_code": rest[4:7],
            "psn": records["5F34"].hex(), "name": records["5F20"].decode(),
            "icc": tlv.encode({tag: icc_values[tag] for tag in ICC_TAGS}),
            "values": icc_values}
