"""A simulated terminal: what a provisioned board sends and checks, built on the host.

Each request is made as docs/protocol.md says the board makes it: the next KSN counter,
the DUKPT working keys of that KSN from the terminal's initial key (X9.24-3-2017; the
BDK stays in the issuer's key store), an ISO 9564-1 format 4 PIN block under the PIN
key, an 8-byte AES-CMAC under the MAC generation key over the deterministic CBOR
without key 7. An answer is taken only once its MAC verifies under the MAC verification
key and it names this terminal, trace, KSN and the SHA-256 of the request's bytes.
"""
import hashlib
import hmac
from dataclasses import dataclass

import psec.pinblock

from ..issuer import dukpt
from ..link import protocol

_USAGES = (dukpt.KeyUsage.PIN_ENCRYPTION, dukpt.KeyUsage.MAC_GENERATION,
           dukpt.KeyUsage.MAC_VERIFICATION)
MAC_SIZE = 8


class AnswerRefused(Exception):
    """The answer failed a check the board makes (its kind in the message)."""


@dataclass(frozen=True)
class Card:
    pan: str = ""
    pin: str = ""
    expiry: str = "3012"
    service_code: str = "201"

    def __repr__(self):                   # never the PAN or the PIN
        return f"Card(****{self.pan[-4:]})"


@dataclass
class Pending:
    """A request in flight: what checking its answer, and reversing it, need."""
    kind: str                  # purchase or reversal
    trace: int
    ksn: bytes
    mac_key: bytes = b""       # the MAC verification key of `ksn`
    digest: bytes = b""
    amount: int = 0
    currency: int = 0
    body: bytes = b""
    original_trace: "int | None" = None
    original_ksn: "bytes | None" = None


class SimulatedTerminal:
    def __init__(self, terminal_id: str, initial_key_id: bytes, initial_key: bytes,
                 card: Card, merchant_id: str, merchant_name: str, currency: int = 156):
        self.terminal_id = terminal_id
        self._initial_key_id = bytes(initial_key_id)
        self._initial_key = bytes(initial_key)
        self.card = card
        self.merchant_id = merchant_id
        self.merchant_name = merchant_name
        self.currency = currency
        self._counter = 0
        self._trace = 0

    def __repr__(self):                   # no key
        return f"SimulatedTerminal({self.terminal_id})"

    def _next(self):
        """(trace, KSN, (PIN key, MAC generation key, MAC verification key))."""
        self._counter += 1
        self._trace = self._trace % 999999 + 1
        ksn = self._initial_key_id + self._counter.to_bytes(4, "big")
        return self._trace, ksn, dukpt.working_keys_from_initial(self._initial_key, ksn,
                                                                  _USAGES)

    def purchase(self, amount: int, now: int) -> Pending:
        trace, ksn, (pin_key, mac_gen, mac_ver) = self._next()
        card = self.card
        fields = protocol.build(
            PURCHASE, terminal_id=self.terminal_id, trace=trace, time=int(now),
            card=protocol.build("card", pan=card.pan, expiry=card.expiry,
                                service_code=card.service_code),
            pin_block=psec.pinblock.encipher_pinblock_iso_4(pin_key, card.pin, card.pan),
            ksn=ksn, amount=amount, currency=self.currency, merchant_id=self.merchant_id,
            merchant_name=self.merchant_name)
        body = _signed(PURCHASE, fields, mac_gen)
        return Pending("purchase", trace, ksn, mac_ver, hashlib.sha256(body).digest(),
                       amount, self.currency, body)

    def reversal(self, original: Pending, reason: int, now: int) -> Pending:
        """The reversal of the purchase `original`, as the board sends one when the
        purchase's answer did not come or failed its checks (reason 1 timeout, 2 bad
        answer)."""
        trace, ksn, (_, mac_gen, mac_ver) = self._next()
        fields = protocol.build(
            REVERSAL, terminal_id=self.terminal_id, trace=trace, time=int(now), ksn=ksn,
            amount=original.amount, currency=original.currency,
            original_trace=original.trace, original_ksn=original.ksn, reason=reason)
        body = _signed(REVERSAL, fields, mac_gen)
        return Pending("reversal", trace, ksn, mac_ver, hashlib.sha256(body).digest(),
                       original.amount, original.currency, body, original.trace,
                       original.ksn)

    def check(self, body: bytes, pending: Pending) -> dict:
        """The answer's fields by name once it passes the board's checks; AnswerRefused
        if not."""
        rule = _ANSWER[pending.kind]
        try:
            decoded = protocol.decode(rule, body)
            fields = protocol.parse(rule, decoded)
        except protocol.SchemaError:
            raise AnswerRefused("unreadable answer") from None
        expected = dukpt.aes_cmac(pending.mac_key, protocol.mac_input(rule, decoded), MAC_SIZE)
        if not hmac.compare_digest(fields["mac"], expected):
            raise AnswerRefused("answer MAC wrong")
        if (fields["terminal_id"] != self.terminal_id or fields["trace"] != pending.trace
                or fields["ksn"] != pending.ksn
                or fields["request_digest"] != pending.digest):
            raise AnswerRefused("answer for another request")
        return fields


PURCHASE, REVERSAL = "purchase-request", "reversal-request"
_ANSWER = {"purchase": "purchase-response", "reversal": "reversal-response"}


def _signed(rule: str, fields: dict, mac_key: bytes) -> bytes:
    return protocol.with_mac(rule, fields, dukpt.aes_cmac(
        mac_key, protocol.mac_input(rule, fields), MAC_SIZE))
