"""What the issuer does about a cardholder's alert: one pure decision.

    decision = notify.decide(kind, policy, holder, amount=12345, currency=156, now=t)
    decision = notify.decide(REVERSAL, policy, holder, amount=880, currency=156, now=t,
                             purchase_alert=outbox.purchase_alert(ledger, purchase_id))

`policy` is the bank's (policy.Policy), `holder` the cardholder's preferences
(preferences.Cardholder), `amount` in minor units and `currency` ISO 4217 numeric (for
purchases), `now` the unix time (quiet hours are read in the policy's local time). The
result is the status the terminal shows (docs/protocol.cddl `notify-status`) and, when
an alert is made, its kind, channel, masked destination, language and the time it may
go out. Nothing here reads the clock or writes: the issuer stores the outbox row in the
same SQLite transaction as the journal entry, and sends it once that is committed
(alerts.py).

Rules, first match wins (docs/issuer.md has the same table):

  Security alerts (PIN tries exceeded; a frozen or stopped card used), whatever the bank's
  kinds, the subscription, the kinds chosen and quiet hours:
    S1. no phone on file                                           -> 7
    S2. otherwise sent at once on the cardholder's channel         -> 11
  Every other kind:
    0. a purchase above the large-amount limit (the bank's, or the cardholder's own if
       lower) becomes a large-amount alert when the bank alerts large amounts and the
       cardholder is subscribed and chose them: rules 1-4 are skipped, even when the
       purchase is below the threshold or purchases were not chosen. Otherwise it stays
       a purchase. Amounts in another currency than the policy's are never compared.
    1. the bank does not alert this kind                           -> 6
    2. the cardholder is not subscribed                            -> 3
    3. subscribed, but did not choose this kind                    -> 4
    4. a purchase below the threshold (the cardholder's, else the
       bank's default; equal is alerted)                           -> 5, detail "100.00"
    5. no phone on file                                            -> 7
    6. inside the cardholder's quiet hours                         -> 8, held until they end
    7. otherwise: 2 sent (policy delivery "send": the issuer sends at once; 9 if the
       gateway fails), or 1 queued (delivery "queue": the dispatcher sends it)

  Reversal (a purchase cancelled and credited back, reversal outcome 1; a reversal that
  credits nothing, of a purchase declined, never seen or reversed before, is no alert and
  never reaches these rules: 10). It follows the purchase's own alert, so that a
  cardholder told of a charge is told of its cancellation, and one who was not told of
  it is not told of this either; `purchase_alert` is that alert (None: none was made):
    R1. the bank does not alert reversals                          -> 6
    R2. the purchase made no alert -> no alert either: the reason the purchase rules
        (0-5 above, the purchase's amount) give now, else 10
    R3. no phone on file                                           -> 7
    R4. inside the cardholder's quiet hours                        -> 8, held until they end
    R5. the purchase's alert has not gone out yet                  -> 1 queued, due with it,
        so that the credit never arrives before the charge
    R6. otherwise 2 sent or 1 queued, as rule 7
  The channel and language are the purchase alert's: both messages come the same way,
  in the same language. The kind is not chosen by the cardholder: choosing purchase
  alerts (and the threshold) is choosing these.

The destination is the phone number, masked (138****5678), for SMS and for app push
alike: the banking app is registered to that number.
"""
from dataclasses import dataclass, replace

from ..link import protocol
from . import codes
from .money import currency_name, format_amount
from .preferences import mask_phone
from .quiet_hours import local_datetime
from .templates import language_of
# the message text of each kind, next to the kinds (templates.py writes them)
from .templates import (account_change_text, balance_inquiry_text,  # noqa: F401
                        cryptogram_failure_text, frozen_card_text, large_amount_text, pin_tries_exceeded_text,
                        purchase_text, repayment_reminder_text, reversal_text,
                        wrong_pin_text)

PURCHASE = "purchase"
BALANCE_INQUIRY = "balance_inquiry"
WRONG_PIN = "wrong_pin"
PIN_TRIES_EXCEEDED = "pin_tries_exceeded"
LARGE_AMOUNT = "large_amount"
ACCOUNT_CHANGE = "account_change"
REPAYMENT_REMINDER = "repayment_reminder"
FROZEN_CARD = "frozen_card"               # a frozen or stopped card used at a terminal
CRYPTOGRAM_FAILURE = "cryptogram_failure"  # a tap whose ARQC or ATC the issuer refused
REVERSAL = codes.REVERSAL_KIND            # a purchase cancelled and credited back

CHOOSABLE_KINDS = codes.ALERT_KINDS       # the six above that are not security alerts
SECURITY_KINDS = codes.SECURITY_KINDS     # PIN_TRIES_EXCEEDED, FROZEN_CARD, CRYPTOGRAM_FAILURE


@dataclass(frozen=True)
class Decision:
    status: int
    channel: "str | None" = None
    destination: "str | None" = None     # masked
    detail: "str | None" = None          # threshold ("100.00") or end of quiet hours ("07:00")
    kind: "str | None" = None            # the kind of the alert (a purchase may be large_amount)
    language: "str | None" = None        # of the message, when there is one
    send_after: "int | None" = None      # unix time it may go out (status 8; 1 behind
                                         # a purchase alert not sent yet)

    @property
    def alerts(self) -> bool:
        """True when a message goes to the outbox."""
        return self.channel is not None

    @property
    def immediate(self) -> bool:
        """True when the issuer sends the message itself before it answers."""
        return self.status in (codes.SENT, codes.SECURITY_ALERT)

    @property
    def outbox_status(self) -> str:
        return {codes.QUEUED: "queued", codes.QUIET_HOURS: "held",
                codes.GATEWAY_FAILED: "failed"}.get(self.status, "sent")

    def before_send(self) -> "Decision":
        """What is true of an alert sent at once between its COMMIT and its send: it is
        queued (the dispatcher sends it if the issuer cannot)."""
        return replace(self, status=codes.QUEUED) if self.immediate else self

    def failed(self) -> "Decision":
        """This decision once the gateway has refused the message."""
        return replace(self, status=codes.GATEWAY_FAILED)

    def as_cbor_map(self) -> dict:
        """The response's `notification` map."""
        return protocol.build("notification", status=self.status,
                              channel=self.channel or None,
                              destination=self.destination if self.channel else None,
                              detail=self.detail or None)


NOTHING = Decision(codes.NOTHING_TO_ALERT)


def decide(kind: str, policy, holder, *, amount: "int | None" = None,
           currency: "int | None" = None, now: "int | None" = None,
           purchase_alert=None) -> Decision:
    """The decision for an alert of `kind` to `holder` under `policy` (module doc).
    `amount` is required for purchases and reversals (the purchase's); without `now`
    quiet hours are not checked. `purchase_alert` (outbox.PurchaseAlert, for a reversal
    only): the alert the reversed purchase made, None if it made none."""
    if kind == REVERSAL:
        return _decide_reversal(policy, holder, amount, currency, now, purchase_alert)
    if kind in SECURITY_KINDS:
        if not holder.phone:
            return Decision(codes.NO_PHONE, kind=kind)
        return _alert(codes.SECURITY_ALERT, kind, policy, holder)
    if kind not in CHOOSABLE_KINDS:
        raise ValueError(f"alert kind {kind!r}: one of "
                         f"{', '.join(CHOOSABLE_KINDS + SECURITY_KINDS)}")
    comparable = currency is None or currency == policy.currency
    if kind == PURCHASE:
        if amount is None:
            raise ValueError("a purchase alert needs the amount")
        if comparable and amount > large_amount_limit(policy, holder) \
                and policy.alerts(LARGE_AMOUNT) and holder.subscribed \
                and LARGE_AMOUNT in holder.kinds:
            return _deliver(LARGE_AMOUNT, policy, holder, now)
    if not policy.alerts(kind):
        return Decision(codes.BANK_DOES_NOT_ALERT, kind=kind)
    if not holder.subscribed:
        return Decision(codes.NOT_SUBSCRIBED, kind=kind)
    if kind not in holder.kinds:
        return Decision(codes.KIND_NOT_CHOSEN, kind=kind)
    if kind == PURCHASE and comparable:
        threshold = purchase_threshold(policy, holder)
        if amount < threshold:
            return Decision(codes.BELOW_THRESHOLD, kind=kind,
                            detail=threshold_text(threshold, policy.currency))
    return _deliver(kind, policy, holder, now)


def _decide_reversal(policy, holder, amount, currency, now, purchase_alert) -> Decision:
    if amount is None:
        raise ValueError("a reversal alert needs the purchase's amount")
    if not policy.alerts(REVERSAL):
        return Decision(codes.BANK_DOES_NOT_ALERT, kind=REVERSAL)
    if purchase_alert is None:
        why = decide(PURCHASE, policy, holder, amount=amount, currency=currency)
        if why.alerts:
            return Decision(codes.NOTHING_TO_ALERT, kind=REVERSAL)
        return replace(why, kind=REVERSAL)
    if not holder.phone:
        return Decision(codes.NO_PHONE, kind=REVERSAL)
    alert = Decision(codes.SENT, purchase_alert.channel, mask_phone(holder.phone),
                     kind=REVERSAL, language=language_of(policy, purchase_alert.language))
    quiet = holder.quiet_hours
    if quiet is not None and now is not None:
        local = local_datetime(now, policy.utc_offset_min)
        if quiet.contains(local):
            end = quiet.end_after(local)
            return replace(alert, status=codes.QUIET_HOURS, detail=end.strftime("%H:%M"),
                           send_after=int(end.timestamp()))
    if purchase_alert.waiting_until is not None:
        return replace(alert, status=codes.QUEUED,
                       send_after=max(purchase_alert.waiting_until, now or 0))
    return alert if policy.send_immediately else replace(alert, status=codes.QUEUED)


def _deliver(kind, policy, holder, now) -> Decision:
    if not holder.phone:
        return Decision(codes.NO_PHONE, kind=kind)
    quiet = holder.quiet_hours
    if quiet is not None and now is not None:
        local = local_datetime(now, policy.utc_offset_min)
        if quiet.contains(local):
            end = quiet.end_after(local)
            return replace(_alert(codes.QUIET_HOURS, kind, policy, holder),
                           detail=end.strftime("%H:%M"), send_after=int(end.timestamp()))
    status = codes.SENT if policy.send_immediately else codes.QUEUED
    return _alert(status, kind, policy, holder)


def _alert(status, kind, policy, holder) -> Decision:
    return Decision(status, channel_for(holder, kind), mask_phone(holder.phone), kind=kind,
                    language=language_of(policy, holder.language))


def channel_for(holder, kind: str) -> str:
    """The cardholder's channel for `kind`: the one chosen for it, else their default."""
    return holder.channels.get(kind, holder.channel)


def purchase_threshold(policy, holder) -> int:
    own = holder.threshold
    return policy.default_threshold if own is None else own


def large_amount_limit(policy, holder) -> int:
    own = holder.large_amount_limit
    return policy.large_amount_limit if own is None else min(own, policy.large_amount_limit)


def threshold_text(minor: int, currency: int) -> str:
    """The threshold as the terminal shows it: "100.00", no currency code."""
    return format_amount(minor, currency)[len(currency_name(currency)) + 1:]


def local_time(unix_time: int, utc_offset_min: int) -> str:
    """How messages write a time: "2026-11-22 16:02", local time at the offset."""
    return local_datetime(unix_time, utc_offset_min).strftime("%Y-%m-%d %H:%M")
