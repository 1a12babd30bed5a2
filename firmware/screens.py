"""Amounts as the display shows them, and right alignment in its 16 columns. Loaded
for a moment to format an amount (the purchase being keyed, a reversal being sent) and
for a visit's result screen (result.py)."""

# ISO 4217: alphabetic code and minor unit digits, for the currencies we expect
CURRENCIES = {156: ("CNY", 2), 344: ("HKD", 2), 392: ("JPY", 0), 840: ("USD", 2),
              978: ("EUR", 2), 826: ("GBP", 2)}


def money(minor, currency):
    """('1,234.56', 'CNY') from minor units; negative balances keep their sign."""
    code, digits = CURRENCIES.get(currency, (str(currency), 2))
    sign = "-" if minor < 0 else ""
    minor = -minor if minor < 0 else minor
    whole = minor
    frac = ""
    if digits:
        scale = 10 ** digits
        whole = minor // scale
        frac = "." + ("%0" + str(digits) + "d") % (minor % scale)
    text = str(whole)
    groups = []
    while len(text) > 3:
        groups.insert(0, text[-3:])
        text = text[:-3]
    groups.insert(0, text)
    return sign + ",".join(groups) + frac, code


def right(text):
    """`text` right-aligned in the 16 columns (MicroPython's str has no rjust)."""
    return " " * (16 - len(text)) + text
