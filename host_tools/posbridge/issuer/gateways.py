"""Where alerts leave the issuer. A gateway takes one OutgoingMessage and either returns
its reference for the message or raises GatewayError with a reason a person can read
(it never holds the full phone number: the outbox keeps the reason).

    with gateway:                     # opens a session if the gateway has one (SMPP bind)
        ref = gateway.send(message)

BuiltinGateway is the simulator's own: nothing leaves the machine, the outbox row is the
message, and the send always succeeds unless it is told to fail (fault `gateway-down`,
tests). smpp_gateway.SmppGateway sends SMS to an SMSC.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str
    channel: str                 # "sms" or "app"
    phone: str                   # the full number: for the gateway only, never logged
    text: str
    language: "str | None" = None


class GatewayError(Exception):
    """The gateway did not take the message; str() is the reason kept in the outbox."""


class Gateway:
    name = "gateway"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, message: OutgoingMessage) -> str:
        raise NotImplementedError

    def close(self):
        """End the session, if there is one. Safe to call twice."""


class BuiltinGateway(Gateway):
    """Takes every message: the outbox row is all there is to send."""

    name = "builtin"

    def __init__(self, fail_reason: "str | None" = None):
        self.fail_reason = fail_reason
        self.sent = []               # message ids, in order: what tests look at

    def send(self, message: OutgoingMessage) -> str:
        if self.fail_reason:
            raise GatewayError(self.fail_reason)
        self.sent.append(message.message_id)
        return f"builtin-{message.message_id}"
