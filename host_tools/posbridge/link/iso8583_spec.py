"""The ISO 8583:1987 message format of the bridge <-> issuer host link, as plain data
for pyiso8583 (docs/iso8583.md documents it field by field).

Binary format: the MTI as 2 bytes of BCD, binary bitmaps (the secondary one when a field
above 64 is present), numeric fields in BCD (a digit per nibble, odd lengths padded
with a leading 0), lengths of variable fields in BCD (LL: 1 byte, LLL: 2 bytes),
alphanumeric fields in ASCII, binary fields as their bytes. pyiso8583 gives and takes
BCD and binary values as hex strings: `pack` and `unpack` do the same, and the mapping
(iso8583_map.py) checks that a numeric field holds digits only.

On the TCP connection every message is preceded by its length, 2 bytes big-endian
(iso8583_framing.py)."""
import iso8583

# message type indicators
BALANCE_INQUIRY = "0100"
BALANCE_INQUIRY_RESPONSE = "0110"
PURCHASE = "0200"
PURCHASE_RESPONSE = "0210"
REVERSAL = "0400"
REVERSAL_RESPONSE = "0410"
NETWORK = "0800"
NETWORK_RESPONSE = "0810"

# field 70, network management information code
SIGN_ON = "001"
ECHO_TEST = "301"

# field 3, processing code: transaction type (positions 1-2), from and to account
# types (3-4, 5-6: 00 default)
PROCESSING_BALANCE = "310000"
PROCESSING_PURCHASE = "000000"


def _n(length, desc):           # numeric, fixed: BCD
    return {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "len_count": "nibbles",
            "left_pad": "0", "max_len": length, "desc": desc}


def _nvar(max_len, desc, len_type=1):   # numeric, LLVAR (1) or LLLVAR (2): BCD
    return {"data_enc": "b", "len_enc": "bcd", "len_type": len_type,
            "len_count": "nibbles", "left_pad": "0", "max_len": max_len, "desc": desc}


def _an(length, desc):          # alphanumeric, fixed: ASCII
    return {"data_enc": "ascii", "len_enc": "bcd", "len_type": 0, "max_len": length,
            "desc": desc}


def _anvar(max_len, desc, enc="ascii"):  # alphanumeric, LLLVAR
    return {"data_enc": enc, "len_enc": "bcd", "len_type": 2, "max_len": max_len,
            "desc": desc}


def _b(length, desc):           # binary, fixed
    return {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": length,
            "desc": desc}


def _bvar(max_len, desc):       # binary, LLLVAR
    return {"data_enc": "b", "len_enc": "bcd", "len_type": 2, "max_len": max_len,
            "desc": desc}


SPEC = {
    "h": {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": 0,
          "desc": "Message header (none)"},
    "t": _b(2, "Message type indicator"),
    "p": _b(8, "Bitmap, primary"),
    "1": _b(8, "Bitmap, secondary"),
    "2": _nvar(19, "Primary account number"),
    "3": _n(6, "Processing code"),
    "4": _n(12, "Amount, transaction"),
    "7": _n(10, "Transmission date and time (MMDDhhmmss, UTC)"),
    "11": _n(6, "Systems trace audit number"),
    "12": _n(6, "Time, local transaction (hhmmss, UTC)"),
    "13": _n(4, "Date, local transaction (MMDD, UTC)"),
    "14": _n(4, "Date, expiration (YYMM)"),
    "22": _n(3, "Point of service entry mode"),
    "25": _n(2, "Point of service condition code"),
    "37": _an(12, "Retrieval reference number"),
    "38": _an(6, "Authorization identification response"),
    "39": _an(2, "Response code"),
    "40": _n(3, "Service restriction code"),
    "41": _an(8, "Card acceptor terminal identification"),
    "42": _an(15, "Card acceptor identification code"),
    "43": _an(40, "Card acceptor name/location"),
    "48": _nvar(19, "Additional data, private: terminal time (seconds since 1970, UTC)", 2),
    "49": _n(3, "Currency code, transaction"),
    "52": _b(16, "PIN data (ISO 9564-1 format 4, AES)"),
    "53": _b(12, "Security related control information (DUKPT KSN)"),
    "54": _anvar(120, "Additional amounts"),
    "55": _bvar(255, "ICC data"),
    "60": _nvar(2, "Private: notification status", 2),
    "61": _anvar(3, "Private: notification channel"),
    "62": _anvar(24, "Private: notification destination (masked)", "utf-8"),
    "63": _anvar(40, "Private: notification detail", "utf-8"),
    "64": _b(8, "Message authentication code (primary bitmap only)"),
    "70": _n(3, "Network management information code"),
    "90": _n(42, "Original data elements"),
    "120": _nvar(3, "Private: PIN tries left", 2),
    "121": _nvar(1, "Private: reversal reason", 2),
    "122": _nvar(1, "Private: reversal outcome", 2),
    "123": _bvar(12, "Private: original KSN"),
    "128": _b(8, "Message authentication code (with a secondary bitmap)"),
}

# the fields the mapping uses, as numbers
FIELDS = sorted(int(k) for k in SPEC if k.isdigit() and k != "1")


class Iso8583Error(ValueError):
    """A message that pyiso8583 cannot encode or decode against SPEC. `fields` holds
    what could be decoded before the fault (to answer a format error about it)."""

    def __init__(self, text, fields=None):
        super().__init__(text)
        self.fields = fields or {}


def pack(fields: dict) -> bytes:
    """The message for `fields` (pyiso8583's form: "t" the MTI, str keys, str values)."""
    try:
        data, _ = iso8583.encode(dict(fields), SPEC)
    except (iso8583.EncodeError, KeyError, TypeError, ValueError) as exc:
        raise Iso8583Error(f"cannot encode: {exc}") from None
    return bytes(data)


def unpack(data: bytes) -> dict:
    """The fields of one message (without the bitmaps), or Iso8583Error."""
    try:
        fields, _ = iso8583.decode(bytes(data), SPEC)
    except iso8583.DecodeError as exc:
        raise Iso8583Error(f"cannot decode: {exc}", exc.doc_dec) from None
    except (KeyError, TypeError, ValueError) as exc:   # a field number outside SPEC
        raise Iso8583Error(f"cannot decode: {exc}") from None
    fields.pop("p", None)
    fields.pop("1", None)
    fields.pop("h", None)
    return fields
