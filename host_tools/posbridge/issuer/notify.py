"""What the issuer does about the cardholder's alert for a transaction.

decide() applies the rules, in this order, and returns the status the terminal shows
(docs/protocol.cddl `notify-status`) with the channel and masked destination when an
alert is made; the message texts are built by the *_text functions. Nothing here
writes: the issuer stores the outbox row in the same SQLite transaction as the
journal entry.

Balance inquiry approved (kind balance_inquiry) and wrong PIN (kind wrong_pin):
  1. the bank does not alert this kind                  -> 6
  2. the cardholder is not subscribed                   -> 3
  3. subscribed, but not to this kind                   -> 4
  4. no phone on file                                   -> 7
  5. otherwise an alert: "sent" (2) by the built-in gateway, or "queued" (1) when the
     policy leaves sending to a dispatcher.
Purchase approved (kind purchase): as above, with the bank's purchase policy in 1, and
between 3 and 4: the amount below the cardholder's threshold -> 5, the threshold in the
detail ("100.00").
PIN tries exceeded (a security alert): whatever the subscription and kinds, an alert
on the cardholder's channel if a phone is on file (11), else 7.
Declined before any account event (unknown, restricted or expired card, PIN already
locked, duplicate, malfunction, a purchase declined 13, 51 or 61): 10, nothing to alert.

The destination is the phone number, masked (138****5678), for SMS and for app push
alike: the banking app is registered to that number.
"""
import datetime
from dataclasses import dataclass

from . import codes
from .cards import mask_phone
from .money import format_amount, format_plain

BALANCE_INQUIRY = "balance_inquiry"
PURCHASE = "purchase"
WRONG_PIN = "wrong_pin"
PIN_TRIES_EXCEEDED = "pin_tries_exceeded"


@dataclass(frozen=True)
class Decision:
    status: int
    channel: "str | None" = None
    destination: "str | None" = None     # masked
    detail: "str | None" = None          # e.g. the threshold, "100.00"

    @property
    def alerts(self) -> bool:
        """True when a message goes to the outbox."""
        return self.channel is not None

    @property
    def outbox_status(self) -> str:
        return "queued" if self.status == codes.QUEUED else "sent"

    def as_cbor_map(self) -> dict:
        """The response's `notification` map."""
        out = {1: self.status}
        if self.channel:
            out[2] = self.channel
            out[3] = self.destination
        if self.detail:
            out[4] = self.detail
        return out


NOTHING = Decision(codes.NOTHING_TO_ALERT)


def decide(kind: str, policy, holder, *, amount=None, currency=None, now=None) -> Decision:
    """The decision for an alert of `kind` to `holder` (ledger.Cardholder) under
    `policy` (policy.Policy); a purchase's `amount` and `currency` for the threshold
    (`now`, unix seconds, is for quiet hours, which are not decided here yet)."""
    if kind == PIN_TRIES_EXCEEDED:
        if not holder.phone:
            return Decision(codes.NO_PHONE)
        return Decision(codes.SECURITY_ALERT, holder.channel, mask_phone(holder.phone))
    bank_alerts = {BALANCE_INQUIRY: policy.alert_balance_inquiries,
                   WRONG_PIN: policy.alert_wrong_pin,
                   PURCHASE: policy.alert_purchases}
    if kind not in bank_alerts:
        raise ValueError(f"alert kind {kind!r} is not decided here yet")
    if kind == PURCHASE and (amount is None or currency is None):
        raise ValueError("a purchase alert is decided with its amount and currency")
    if not bank_alerts[kind]:
        return Decision(codes.BANK_DOES_NOT_ALERT)
    if not holder.subscribed:
        return Decision(codes.NOT_SUBSCRIBED)
    if kind not in holder.kinds:
        return Decision(codes.KIND_NOT_CHOSEN)
    if kind == PURCHASE and amount < holder.threshold:
        return Decision(codes.BELOW_THRESHOLD, detail=format_plain(holder.threshold, currency))
    if not holder.phone:
        return Decision(codes.NO_PHONE)
    status = codes.SENT if policy.send_immediately else codes.QUEUED
    return Decision(status, holder.channel, mask_phone(holder.phone))


def local_time(unix_time: int, utc_offset_min: int) -> str:
    tz = datetime.timezone(datetime.timedelta(minutes=utc_offset_min))
    return datetime.datetime.fromtimestamp(unix_time, tz).strftime("%Y-%m-%d %H:%M")


def balance_inquiry_text(last4, available, ledger, currency, when, terminal_id) -> str:
    return (f"Card ending {last4}: balance inquiry at terminal {terminal_id}, {when}. "
            f"Available {format_amount(available, currency)}, "
            f"ledger {format_amount(ledger, currency)}.")


def wrong_pin_text(last4, tries_left, when, terminal_id) -> str:
    tries = "1 try" if tries_left == 1 else f"{tries_left} tries"
    return (f"Card ending {last4}: wrong PIN entered at terminal {terminal_id}, {when}. "
            f"{tries} left before the PIN is locked.")


def pin_tries_exceeded_text(last4, when, terminal_id) -> str:
    return (f"Security alert: card ending {last4}: PIN tries exceeded at terminal "
            f"{terminal_id}, {when}. The PIN is locked; call your bank if this was not you.")


def purchase_text(last4, amount, currency, merchant, when, available) -> str:
    return (f"Card ending {last4}: purchase of {format_amount(amount, currency)} at "
            f"{merchant}, {when}. Available {format_amount(available, currency)}.")
