"""How card numbers appear wherever a person can read them (PCI DSS 3.4: at most the
first six and last four digits)."""
import re


def mask_pan(pan) -> str:
    digits = str(pan)
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


_PAN_IN_TEXT = re.compile(r"(?<!\d)(\d{6})(\d{3,9})(\d{4})(?!\d)")


def mask_pans_in_text(text: str) -> str:
    """Mask anything in free text that looks like a 13-19 digit card number."""
    return _PAN_IN_TEXT.sub(lambda mt: mt.group(1) + "*" * len(mt.group(2)) + mt.group(3), text)
