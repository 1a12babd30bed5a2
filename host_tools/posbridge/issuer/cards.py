"""Card data checks: PAN (length and Luhn, link/pan.py), expiry YYMM, the cardholder's phone number
and how it is masked. Errors are ValueError with a message for a person; none of them
quotes a full PAN."""
import datetime
import re

from ..link.pan import luhn_valid, mask_pan

_PHONE = re.compile(r"\+?[0-9]{7,15}")


def check_pan(pan: str) -> str:
    """The PAN if it is 12 to 19 digits with a valid Luhn digit, else ValueError."""
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise ValueError("PAN: 12 to 19 digits expected")
    if not luhn_valid(pan):
        raise ValueError(f"PAN {mask_pan(pan)}: Luhn check digit is wrong")
    return pan


def parse_expiry(yymm: str):
    """(year, month) of a YYMM expiry (years 2000..2099), else ValueError."""
    if not (len(yymm) == 4 and yymm.isascii() and yymm.isdigit()):
        raise ValueError(f"expiry {yymm!r}: YYMM expected")
    month = int(yymm[2:])
    if not 1 <= month <= 12:
        raise ValueError(f"expiry {yymm}: month {month} is not 01..12")
    return 2000 + int(yymm[:2]), month


def is_expired(yymm: str, unix_time: int, utc_offset_min: int = 0) -> bool:
    """True once the expiry month is over at `unix_time` (local time at the offset): a
    card is valid to the last day of its expiry month. An impossible expiry is expired."""
    try:
        year, month = parse_expiry(yymm)
    except ValueError:
        return True
    local = (datetime.datetime.fromtimestamp(unix_time, datetime.timezone.utc)
             + datetime.timedelta(minutes=utc_offset_min))
    return (local.year, local.month) > (year, month)


def check_phone(phone: str) -> str:
    """A phone number: optional +, then 7 to 15 digits (E.164 length), no spaces."""
    if not _PHONE.fullmatch(phone):
        raise ValueError(f"phone {phone!r}: 7 to 15 digits expected, optionally after +")
    return phone


def mask_phone(phone: str) -> str:
    """First 3 and last 4 digits kept, the rest starred: 13812345678 -> 138****5678
    (a leading + is kept and not counted)."""
    plus = "+" if phone.startswith("+") else ""
    digits = phone[len(plus):]
    if len(digits) <= 7:
        return plus + "*" * (len(digits) - 4) + digits[-4:]
    return plus + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
