"""From a decision to an outbox row: the message written in the cardholder's language,
sent at once when the decision says so, then stored.

Two steps, because a transaction's response must carry the final status (2 sent or 9
gateway failed) before it is MAC'd and journaled, and the outbox row points at the
journal entry:

    alert = alerts.make(decision, holder, card.last4, text_for, dispatcher)
    decision = alert.decision if alert else decision      # into the response
    ...journal the transaction...
    alerts.store(ledger, alert, policy, now, transaction_id=tx_id)

`text_for(language, kind)` writes the text: `kind` is the decision's, which for a
purchase may be large_amount. post() does both steps for alerts without a transaction
(account events, reminders).
"""
from dataclasses import dataclass

from . import outbox
from .gateways import OutgoingMessage


@dataclass(frozen=True)
class Alert:
    decision: object             # notify.Decision, final
    message_id: str
    cardholder_id: int
    last4: str
    text: str
    reason: "str | None" = None  # why the immediate send failed
    ref: "str | None" = None     # the gateway's reference when it was sent


def make(decision, holder, last4: str, text_for, dispatcher) -> "Alert | None":
    """The alert `decision` asks for (None if it asks for none), sent through
    `dispatcher` now when the decision is immediate (statuses 2 and 11)."""
    if not decision.alerts:
        return None
    message_id = outbox.new_message_id()
    text = text_for(decision.language, decision.kind)
    if not decision.immediate:
        return Alert(decision, message_id, holder.id, last4, text)
    delivery = dispatcher.deliver(OutgoingMessage(message_id, decision.channel, holder.phone,
                                                  text, decision.language))
    if not delivery.ok:
        return Alert(decision.failed(), message_id, holder.id, last4, text,
                     reason=delivery.reason)
    return Alert(decision, message_id, holder.id, last4, text, ref=delivery.ref)


def store(ledger, alert: Alert, policy, now: int, *, transaction_id=None,
          account_event_id=None) -> int:
    """The outbox row of `alert` (the caller holds the transaction); returns its id."""
    d = alert.decision
    status = d.outbox_status
    next_attempt_at = {"held": d.send_after,
                       "failed": now + policy.retry_delay(1)}.get(status)
    return outbox.add(
        ledger, transaction_id=transaction_id, account_event_id=account_event_id,
        cardholder_id=alert.cardholder_id, message_id=alert.message_id, kind=d.kind,
        card_last4=alert.last4, channel=d.channel, destination=d.destination,
        language=d.language, text=alert.text, status=status, now=now,
        next_attempt_at=next_attempt_at, attempts=1 if status == "failed" else None,
        reason=alert.reason, gateway_ref=alert.ref)


def post(ledger, decision, holder, last4: str, text_for, dispatcher, policy, now: int, *,
         account_event_id=None):
    """make() and store() at once; returns the final decision."""
    alert = make(decision, holder, last4, text_for, dispatcher)
    if alert is None:
        return decision
    store(ledger, alert, policy, now, account_event_id=account_event_id)
    return alert.decision
