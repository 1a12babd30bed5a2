"""Amounts in minor units and ISO 4217 numeric currencies: how they are written for a
person ("CNY 1,234.56") and read from one ("1234.56")."""
from decimal import Decimal, InvalidOperation

# ISO 4217: numeric code -> (alphabetic code, minor unit digits); the ones the demo and
# the tests use. Others are shown by number with two decimals.
CURRENCIES = {
    156: ("CNY", 2),
    344: ("HKD", 2),
    392: ("JPY", 0),
    410: ("KRW", 0),
    446: ("MOP", 2),
    826: ("GBP", 2),
    840: ("USD", 2),
    901: ("TWD", 2),
    978: ("EUR", 2),
}
_BY_ALPHA = {alpha: num for num, (alpha, _) in CURRENCIES.items()}


def currency_code(text) -> int:
    """The ISO 4217 numeric code of "156" or "CNY", else ValueError."""
    text = str(text).strip().upper()
    if text in _BY_ALPHA:
        return _BY_ALPHA[text]
    if text.isdigit() and 1 <= int(text) <= 999:
        return int(text)
    raise ValueError(f"currency {text!r}: an ISO 4217 code expected (156 or CNY)")


def _exponent(currency: int) -> int:
    return CURRENCIES.get(currency, (None, 2))[1]


def currency_name(currency: int) -> str:
    return CURRENCIES.get(currency, (f"{currency:03d}", 2))[0]


def format_amount(minor: int, currency: int) -> str:
    """1234567, 156 -> "CNY 12,345.67"; negative amounts keep their sign."""
    exp = _exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10 ** exp)
    text = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    return f"{currency_name(currency)} {sign}{text}"


def parse_amount(text: str, currency: int) -> int:
    """"1234.56" in `currency` -> 123456 minor units; ValueError for anything that is not
    a plain decimal with at most the currency's number of decimals."""
    exp = _exponent(currency)
    try:
        value = Decimal(str(text).replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"amount {text!r}: a decimal number expected") from None
    if not value.is_finite():
        raise ValueError(f"amount {text!r}: a decimal number expected")
    minor = value.scaleb(exp)
    if minor != minor.to_integral_value():
        raise ValueError(f"amount {text!r}: at most {exp} decimals in "
                         f"{currency_name(currency)}")
    return int(minor)
