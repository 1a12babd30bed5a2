"""Card numbers (PANs): the Luhn check digit (ISO/IEC 7812-1 Annex B) and how a number
appears wherever a person can read it (PCI DSS 3.4: at most the first six and last four
digits). The board's card_reader.mask_pan follows the same rule; a test holds the two
together."""
import re


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial` + digit pass the Luhn check."""
    total = 0
    # the check digit will be rightmost: double every second digit from the right of
    # `partial`, starting with its last one
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(pan: str) -> bool:
    return (len(pan) >= 2 and pan.isascii() and pan.isdigit()
            and luhn_check_digit(pan[:-1]) == pan[-1])


def _kept(position: int, total: int) -> bool:
    """Whether digit `position` (1-based) of a `total`-digit number stays readable: the
    first 6 and last 4 from 13 digits on (at least 3 hidden), the last 4 alone below that,
    none of a number of 4 digits or fewer."""
    if total >= 13:
        return position <= 6 or position > total - 4
    return total > 4 and position > total - 4


def mask_pan(pan) -> str:
    digits = str(pan)
    return "".join(ch if _kept(i, len(digits)) else "*" for i, ch in enumerate(digits, 1))


# 12 to 19 digits (the terminal takes PANs of 12 and more), alone or in groups split by
# single spaces or dashes, as on a card
_PAN_IN_TEXT = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-]|[ -]\d)")


def _mask_match(match) -> str:
    text = match.group(0)
    total = sum(ch.isdigit() for ch in text)
    seen = 0
    out = []
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if _kept(seen, total) else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_pans_in_text(text: str) -> str:
    """Mask anything in free text that looks like a 12-19 digit card number."""
    return _PAN_IN_TEXT.sub(_mask_match, text)
