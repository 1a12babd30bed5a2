"""Sending what the outbox holds, through a gateway per channel.

    dispatcher = Dispatcher(ledger, policy, {"sms": SmppGateway(...), "app": BuiltinGateway()})
    report = dispatcher.run_once()       # `posbridge issuer dispatch`
    dispatcher.close()

run_once claims due rows one at a time (outbox.claim_due: a row another dispatcher,
or the issuer, holds is not taken) until none is left, and for each:
  - the cardholder has no phone any more                -> failed, retried later
  - not a security alert, and the cardholder's quiet hours have begun -> held until they end
  - otherwise one try through the channel's gateway     -> sent (with the gateway's
    reference) or failed with the reason, retried after policy.retry_delay(attempts):
    60 s, 120 s, 240 s ... at most an hour apart, never given up.
The phone number is read from the cardholder at send time (the outbox keeps it masked).
Any number of dispatchers may run on one database, in one process or many (threads each
with a Ledger of their own: `posbridge issuer dispatch --workers N`): each row is
claimed in its own transaction before it is sent, and only one claim of a row succeeds
(outbox.py has the rule), so no message is handed to the gateway twice.

deliver() is the single try, used by the issuer as well for the alerts it sends at once
after its COMMIT (alerts.py).
"""
import logging
import time
from dataclasses import dataclass, field

from . import codes, outbox
from .gateways import BuiltinGateway, Gateway, GatewayError, OutgoingMessage
from .preferences import load_cardholder
from .quiet_hours import local_datetime

log = logging.getLogger("posbridge.issuer.dispatch")


@dataclass(frozen=True)
class Delivery:
    ok: bool
    ref: "str | None" = None
    reason: "str | None" = None


@dataclass(frozen=True)
class Outcome:
    message_id: str
    status: str                  # sent / failed / held
    detail: str = ""             # gateway reference, failure reason or "until HH:MM"


@dataclass
class DispatchReport:
    outcomes: list = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


class Dispatcher:
    def __init__(self, ledger, policy, gateways: "dict | Gateway | None" = None, *,
                 clock=time.time):
        if gateways is None or isinstance(gateways, Gateway):
            gateway = gateways or BuiltinGateway()
            gateways = {channel: gateway for channel in codes.CHANNELS}
        self.ledger = ledger
        self.policy = policy
        self.gateways = gateways
        self._clock = clock

    def deliver(self, message: OutgoingMessage) -> Delivery:
        """One try through the gateway of the message's channel."""
        gateway = self.gateways.get(message.channel)
        if gateway is None:
            return Delivery(False, reason=f"no gateway for channel {message.channel}")
        try:
            ref = gateway.send(message)
        except GatewayError as exc:
            log.warning("message %s via %s failed: %s", message.message_id, gateway.name, exc)
            return Delivery(False, reason=str(exc) or "gateway failed")
        return Delivery(True, ref=ref)

    def run_once(self, limit: "int | None" = None) -> DispatchReport:
        now = int(self._clock())
        report = DispatchReport()
        # a claimed row is due again only after its lease or retry delay: this ends
        while limit is None or len(report.outcomes) < limit:
            row = self.ledger.atomically(lambda: outbox.claim_due(self.ledger, now))
            if row is None:
                break
            report.outcomes.append(self._one(row, now))
        log.info("dispatch: %d sent, %d failed, %d held", report.count("sent"),
                 report.count("failed"), report.count("held"))
        return report

    def close(self):
        for gateway in set(self.gateways.values()):
            gateway.close()

    def _one(self, row, now) -> Outcome:
        holder = load_cardholder(self.ledger, row.cardholder_id) \
            if row.cardholder_id is not None else None
        if holder is None or not holder.phone:
            return self._failed(row, "no phone on file", now)
        if row.kind not in codes.SECURITY_KINDS and holder.quiet_hours is not None:
            local = local_datetime(now, self.policy.utc_offset_min)
            if holder.quiet_hours.contains(local):
                end = holder.quiet_hours.end_after(local)
                self.ledger.atomically(lambda: outbox.record_held(
                    self.ledger, row.message_id, int(end.timestamp())))
                return Outcome(row.message_id, "held", f"until {end:%H:%M}")
        delivery = self.deliver(OutgoingMessage(row.message_id, row.channel, holder.phone,
                                                row.text, row.language))
        if not delivery.ok:
            return self._failed(row, delivery.reason, now)
        self.ledger.atomically(lambda: outbox.record_sent(self.ledger, row.message_id,
                                                          delivery.ref, now))
        return Outcome(row.message_id, "sent", delivery.ref or "")

    def _failed(self, row, reason, now) -> Outcome:
        retry_at = now + self.policy.retry_delay(row.attempts + 1)
        self.ledger.atomically(lambda: outbox.record_failed(self.ledger, row.message_id,
                                                            reason, retry_at))
        return Outcome(row.message_id, "failed", reason)
