"""How card numbers appear wherever a person can read them (PCI DSS 3.4: at most the
first six and last four digits)."""
import re


def mask_pan(pan) -> str:
    digits = str(pan)
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


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
            # as mask_pan: a number too short to keep 6 and 4 digits keeps none
            keep = total >= 13 and (seen <= 6 or seen > total - 4)
            out.append(ch if keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_pans_in_text(text: str) -> str:
    """Mask anything in free text that looks like a 12-19 digit card number."""
    return _PAN_IN_TEXT.sub(_mask_match, text)
