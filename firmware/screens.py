"""What the cardholder reads: amounts, decline reasons and the notification line, each
cut to the 16 columns of the display."""

# ISO 4217: alphabetic code and minor unit digits, for the currencies we expect
CURRENCIES = {156: ("CNY", 2), 344: ("HKD", 2), 392: ("JPY", 0), 840: ("USD", 2),
              978: ("EUR", 2), 826: ("GBP", 2)}

# ISO 8583 field 39 response codes the issuer sends, as two short lines
DECLINES = {
    "14": ("Invalid card", ""),
    "51": ("Insufficient", "funds"),
    "54": ("Card expired", ""),
    "55": ("Incorrect PIN", ""),
    "61": ("Exceeds amount", "limit"),
    "62": ("Restricted card", "call your bank"),
    "75": ("PIN tries", "exceeded"),
    "91": ("Issuer", "unavailable"),
    "94": ("Duplicate", "transaction"),
    "96": ("System error", "try later"),
}

# docs/protocol.cddl notify-status
NOTIFY_QUEUED = 1
NOTIFY_SENT = 2
NOTIFY_NOT_SUBSCRIBED = 3
NOTIFY_KIND_OFF = 4
NOTIFY_BELOW_THRESHOLD = 5
NOTIFY_BANK_POLICY = 6
NOTIFY_NO_PHONE = 7
NOTIFY_QUIET_HOURS = 8
NOTIFY_GATEWAY_FAILED = 9
NOTIFY_NOTHING = 10
NOTIFY_SECURITY = 11


def money(minor, currency):
    """'CNY 1,234.56' from minor units; negative balances keep their sign."""
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


def decline_lines(code):
    return DECLINES.get(code, ("Declined", "code " + str(code)))


def notification_lines(note):
    """Two lines saying whether the cardholder was alerted, and if not why."""
    if not isinstance(note, dict):
        return ("Alert status", "unknown")
    status = note.get(1)
    channel = note.get(2)
    dest = note.get(3) or ""
    detail = note.get(4) or ""
    via = "App alert" if channel == "app" else "SMS"
    if status == NOTIFY_SENT:
        return (via + " sent to", dest) if channel != "app" else ("App alert sent", dest)
    if status == NOTIFY_QUEUED:
        return (via + " queued", dest)
    if status == NOTIFY_NOT_SUBSCRIBED:
        return ("Alerts not", "subscribed")
    if status == NOTIFY_KIND_OFF:
        return ("Alert for this", "not chosen")
    if status == NOTIFY_BELOW_THRESHOLD:
        return ("Below alert", "threshold " + detail)
    if status == NOTIFY_BANK_POLICY:
        return ("Bank does not", "alert " + (detail or "this"))
    if status == NOTIFY_NO_PHONE:
        return ("No alert: no", "phone on file")
    if status == NOTIFY_QUIET_HOURS:
        return ("Alert held:", "quiet hours")
    if status == NOTIFY_GATEWAY_FAILED:
        return ("Alert failed", "bank will retry")
    if status == NOTIFY_NOTHING:
        return ("No alert", "")
    if status == NOTIFY_SECURITY:
        return ("Security alert", "sent " + dest)
    return ("Alert status", str(status))
