"""From a decision to an outbox row, and the row sent once its transaction is committed
(a transactional outbox): the message is written in the cardholder's language and
stored in the same SQLite transaction as what it is about (the journal entry, the
account event); nothing leaves the issuer before that transaction's COMMIT, so a
transaction that rolls back leaves no message and sends none.

    alert = alerts.make(decision, holder, card.last4, text_for)   # nothing sent
    with ledger.transaction():
        ...journal the transaction, with alert.decision.before_send() in the response...
        alerts.store(ledger, alert, policy, now, transaction_id=tx_id)
    # after COMMIT
    alert = alerts.send(ledger, alert, dispatcher, policy, now)    # 2 sent, or 9 failed

`text_for(language, kind)` writes the text: `kind` is the decision's, which for a
purchase may be large_amount. An alert the policy sends at once (statuses 2 and 11) is
stored already claimed by this process (outbox status `sending`, outbox.py), so that no
dispatcher sends it too; send() makes the one try and records it (sent, or failed and
retried by the dispatcher). If the process dies between COMMIT and send(), the claim
lapses and the dispatcher sends it. Any other alert (queued, held) is the dispatcher's
from the start and send() leaves it alone.

send() is deliver() (the gateway, no database) then record() (the row, in the caller's
transaction or its own), for a caller that records something else with it: the issuer
rewrites the journaled response with the final status in the same transaction.
"""
from dataclasses import dataclass, replace

from . import outbox
from .gateways import OutgoingMessage


@dataclass(frozen=True)
class Alert:
    decision: object             # notify.Decision: as decided, then as sent
    message_id: str
    cardholder_id: int
    phone: "str | None"          # for the immediate send; never stored (the row is masked)
    last4: str
    text: str
    reason: "str | None" = None  # why the immediate send failed
    ref: "str | None" = None     # the gateway's reference when it was sent
    sent: bool = False           # deliver() has run

    def __repr__(self):          # never the phone number, even in a traceback
        return f"Alert({self.message_id}, {self.decision.kind}, status {self.decision.status})"


def make(decision, holder, last4: str, text_for) -> "Alert | None":
    """The alert `decision` asks for (None if it asks for none); nothing is sent."""
    if not decision.alerts:
        return None
    return Alert(decision, outbox.new_message_id(), holder.id, holder.phone, last4,
                 text_for(decision.language, decision.kind))


def store(ledger, alert: Alert, policy, now: int, *, transaction_id=None,
          account_event_id=None) -> int:
    """The outbox row of `alert` (the caller holds the transaction); returns its id. An
    alert sent at once is stored claimed (`sending`) for send() after the COMMIT."""
    d = alert.decision
    status = "sending" if d.immediate else d.outbox_status
    return outbox.add(
        ledger, transaction_id=transaction_id, account_event_id=account_event_id,
        cardholder_id=alert.cardholder_id, message_id=alert.message_id, kind=d.kind,
        card_last4=alert.last4, channel=d.channel, destination=d.destination,
        language=d.language, text=alert.text, status=status, now=now,
        next_attempt_at=d.send_after)


def deliver(alert: Alert, dispatcher) -> Alert:
    """One try through the gateway for an alert sent at once (only after the COMMIT
    that stored it); any other alert is returned as it is."""
    if not alert.decision.immediate:
        return alert
    delivery = dispatcher.deliver(OutgoingMessage(alert.message_id, alert.decision.channel,
                                                  alert.phone, alert.text,
                                                  alert.decision.language))
    if not delivery.ok:
        return replace(alert, decision=alert.decision.failed(), reason=delivery.reason,
                       sent=True)
    return replace(alert, ref=delivery.ref, sent=True)


def record(ledger, alert: Alert, policy, now: int):
    """What deliver() did, in the outbox row (its own transaction unless the caller
    holds one)."""
    if not alert.sent:
        return
    with ledger.transaction():
        if alert.reason is None:
            outbox.record_sent(ledger, alert.message_id, alert.ref, now)
        else:
            outbox.record_failed(ledger, alert.message_id, alert.reason,
                                 now + policy.retry_delay(1))


def send(ledger, alert: "Alert | None", dispatcher, policy, now: int) -> "Alert | None":
    """deliver() and record(), after the COMMIT that stored `alert`; the final alert."""
    if alert is None:
        return None
    alert = deliver(alert, dispatcher)
    record(ledger, alert, policy, now)
    return alert
