"""One CBOR value <-> one ISO 8583 field value (pyiso8583's str), for the tables of
iso8583_map.py: each `from_iso(to_iso(v)) == v` for every value it takes, and `to_iso`
refuses (MappingError) a value that would not come back equal."""
from . import iso8583_spec as spec


class MappingError(ValueError):
    """A body that cannot be carried in ISO 8583, or an ISO message that is not one of
    ours (a field missing, unknown, malformed, or inconsistent): a format error (30)."""


def _digits(text: str, what: str) -> str:
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        raise MappingError(f"{what}: not digits")
    return text


class Number:
    """An int as `width` digits, zero-padded (width None: as many as it has)."""

    def __init__(self, width=None, max_digits=None):
        self.width = width
        self.max_digits = max_digits or width

    def to_iso(self, value):
        text = str(value) if self.width is None else f"{value:0{self.width}d}"
        if value < 0 or (self.max_digits and len(text) > self.max_digits):
            # the value is not quoted: it may be a balance
            raise MappingError(f"number does not fit {self.max_digits} digits")
        return text

    def from_iso(self, text):
        value = int(_digits(text, "number"))
        if text != (str(value) if self.width is None else f"{value:0{self.width}d}"):
            raise MappingError("number not in its one form")
        return value


class Digits:
    """A text of digits as it is (PAN, expiry, service code)."""

    def to_iso(self, value):
        return _digits(value, "digits")

    def from_iso(self, text):
        return _digits(text, "digits")


class Text:
    """A text left-justified in `width` characters, padded with spaces: ASCII only and
    no trailing space, or it would not come back equal (width None: as it is)."""

    def __init__(self, width=None, encoding="ascii"):
        self.width = width
        self.encoding = encoding

    def to_iso(self, value):
        if self.encoding == "ascii" and not value.isascii():
            raise MappingError("text outside ASCII")
        if self.width is None:
            return value
        if value != value.rstrip(" ") or len(value) > self.width or not value:
            raise MappingError(f"text does not fit {self.width} characters")
        return value.ljust(self.width)

    def from_iso(self, text):
        value = text if self.width is None else text.rstrip(" ")
        if not value:
            raise MappingError("empty text")
        return value


class Binary:
    def to_iso(self, value):
        return bytes(value).hex().upper()

    def from_iso(self, text):
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise MappingError("not hex") from None


class EntryMode:
    """Field 22: entry mode (positions 1-2) and PIN entry capability (3): 1, the
    terminal takes PINs."""

    def to_iso(self, value):
        return f"{value:02d}1"

    def from_iso(self, text):
        _digits(text, "entry mode")
        if len(text) != 3 or text[2] != "1":
            raise MappingError("field 22: PIN entry capability not 1")
        return int(text[:2])


class MerchantName:
    """Field 43: the name in positions 1-22, city and country (23-40) as spaces: the
    terminal does not send them."""
    NAME = 22

    def to_iso(self, value):
        return Text(self.NAME).to_iso(value).ljust(40)

    def from_iso(self, text):
        if text[self.NAME:].strip(" "):
            raise MappingError("field 43: city/country not blank")
        return Text(self.NAME).from_iso(text[:self.NAME])


class OriginalData:
    """Field 90: original MTI 0200, original STAN, then the original transmission time
    and acquirer and forwarding institution ids as zeros (a reversal names its purchase
    by trace and KSN only)."""

    def to_iso(self, value):
        return spec.PURCHASE + f"{value:06d}" + "0" * 32

    def from_iso(self, text):
        _digits(text, "field 90")
        if text[:4] != spec.PURCHASE or text[10:] != "0" * 32:
            raise MappingError("field 90: not the original data of a purchase")
        return Number(6).from_iso(text[4:10])


class Arpc:
    """Response field 55: the ARPC as EMV tag 91 (issuer authentication data)."""

    def to_iso(self, value):
        return (b"\x91" + bytes([len(value)]) + value).hex().upper()

    def from_iso(self, text):
        data = Binary().from_iso(text)
        if len(data) < 2 or data[0] != 0x91 or data[1] != len(data) - 2:
            raise MappingError("field 55: not one tag 91")
        return data[2:]
