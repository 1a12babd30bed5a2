"""A visit's result screen: what the issuer's verified answer says, in the display's
16 columns and 8 rows: the balance, or a purchase approved with its approval code and
the balance after it, or the decline reason; then whether the cardholder was alerted,
and if not why. Loaded for the result only."""
import screens
from micropython import const

# balance-response / purchase-response keys (docs/protocol.cddl)
_K_RSP_CODE = const(3)
_K_RSP_APPROVAL = const(4)
_K_RSP_AVAILABLE = const(5)
_K_RSP_LEDGER = const(6)
_K_RSP_CURRENCY = const(7)
_K_RSP_NOTIFY = const(8)
_K_RSP_PIN_TRIES = const(10)

# ISO 8583 field 39 response codes the issuer sends, as two short lines
DECLINES = {
    "14": ("Invalid card", ""),
    "51": ("Insufficient", "funds"),
    "54": ("Card expired", ""),
    "55": ("Incorrect PIN", ""),
    "61": ("Exceeds amount", "limit"),
    "62": ("Restricted card", "call your bank"),
    "63": ("Request failed", "security check"),
    "68": ("Request too old", "or clock wrong"),
    "13": ("Currency not", "accepted"),
    "75": ("PIN tries", "exceeded"),
    "91": ("Issuer", "unavailable"),
    "94": ("Duplicate", "transaction"),
    "96": ("System error", "try later"),
}

# docs/protocol.cddl notify-status
_NOTIFY_QUEUED = const(1)
_NOTIFY_SENT = const(2)
_NOTIFY_NOT_SUBSCRIBED = const(3)
_NOTIFY_KIND_OFF = const(4)
_NOTIFY_BELOW_THRESHOLD = const(5)
_NOTIFY_BANK_POLICY = const(6)
_NOTIFY_NO_PHONE = const(7)
_NOTIFY_QUIET_HOURS = const(8)
_NOTIFY_GATEWAY_FAILED = const(9)
_NOTIFY_NOTHING = const(10)
_NOTIFY_SECURITY = const(11)


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
    if status == _NOTIFY_SENT:
        return (via + " sent to", dest) if channel != "app" else ("App alert sent", dest)
    if status == _NOTIFY_QUEUED:
        return (via + " queued", dest)
    if status == _NOTIFY_NOT_SUBSCRIBED:
        return ("Alerts not", "subscribed")
    if status == _NOTIFY_KIND_OFF:
        return ("Alert for this", "not chosen")
    if status == _NOTIFY_BELOW_THRESHOLD:
        return ("Below alert", "threshold " + detail)
    if status == _NOTIFY_BANK_POLICY:
        return ("Bank does not", "alert " + (detail or "this"))
    if status == _NOTIFY_NO_PHONE:
        return ("No alert: no", "phone on file")
    if status == _NOTIFY_QUIET_HOURS:
        return ("Alert held:", "quiet hours")
    if status == _NOTIFY_GATEWAY_FAILED:
        return ("Alert failed", "bank will retry")
    if status == _NOTIFY_NOTHING:
        return ("No alert", "")
    if status == _NOTIFY_SECURITY:
        return ("Security alert", "sent " + dest)
    return ("Alert status", str(status))


def lines(f, amount_text, masked_pan):
    """The eight lines for the answer's fields `f`: a balance inquiry's, or with
    `amount_text` ("CNY 12.50") a purchase's, approved or declined."""
    code = f[_K_RSP_CODE]
    note1, note2 = notification_lines(f.get(_K_RSP_NOTIFY))
    card = "Card " + masked_pan[-8:]
    right = screens.right
    if code == "00":
        currency = f.get(_K_RSP_CURRENCY, 0)
        avail, cur = screens.money(f.get(_K_RSP_AVAILABLE, 0), currency)
        if amount_text:
            return ("APPROVED", right(amount_text),
                    "Approval " + str(f.get(_K_RSP_APPROVAL, "")), "Available",
                    right(cur + " " + avail), note1, note2, card)
        ledger, cur = screens.money(f.get(_K_RSP_LEDGER, 0), currency)
        return ("BALANCE " + cur, "Available", right(avail), "Ledger", right(ledger),
                note1, note2, card)
    reason1, reason2 = decline_lines(code)
    tries = f.get(_K_RSP_PIN_TRIES)
    return ("DECLINED " + code, reason1, reason2,
            ("%d tries left" % tries) if isinstance(tries, int) else "",
            right(amount_text), note1, note2, card)
