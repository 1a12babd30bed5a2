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
from ..link import cbor_profile

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
        fields = {
            1: self.terminal_id, 2: trace, 3: int(now),
            4: {1: card.pan, 2: card.expiry, 3: card.service_code},
            5: psec.pinblock.encipher_pinblock_iso_4(pin_key, card.pin, card.pan),
            6: ksn, 8: amount, 9: self.currency, 10: self.merchant_id,
            11: self.merchant_name,
        }
        body = _signed(fields, mac_gen)
        return Pending("purchase", trace, ksn, mac_ver, hashlib.sha256(body).digest(),
                       amount, self.currency, body)

    def reversal(self, original: Pending, reason: int, now: int) -> Pending:
        """The reversal of the purchase `original`, as the board sends one when the
        purchase's answer did not come or failed its checks (reason 1 timeout, 2 bad
        answer)."""
        trace, ksn, (_, mac_gen, mac_ver) = self._next()
        fields = {1: self.terminal_id, 2: trace, 3: int(now), 6: ksn,
                  8: original.amount, 9: original.currency, 12: original.trace,
                  13: original.ksn, 14: reason}
        body = _signed(fields, mac_gen)
        return Pending("reversal", trace, ksn, mac_ver, hashlib.sha256(body).digest(),
                       original.amount, original.currency, body, original.trace,
                       original.ksn)

    def check(self, body: bytes, pending: Pending) -> dict:
        """The answer's fields once it passes the board's checks; AnswerRefused if not."""
        try:
            fields = cbor_profile.decode(body)
            mac = fields.pop(15)
            expected = dukpt.aes_cmac(pending.mac_key, cbor_profile.encode(fields), MAC_SIZE)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AnswerRefused("unreadable answer") from None
        if not isinstance(mac, bytes) or not hmac.compare_digest(mac, expected):
            raise AnswerRefused("answer MAC wrong")
        if (fields.get(1) != self.terminal_id or fields.get(2) != pending.trace
                or fields.get(9) != pending.ksn or fields.get(17) != pending.digest):
            raise AnswerRefused("answer for another request")
        code = fields.get(3)
        if not isinstance(code, str) or len(code) != 2:
            raise AnswerRefused("answer without a response code")
        return fields


def _signed(fields: dict, mac_key: bytes) -> bytes:
    fields[7] = dukpt.aes_cmac(mac_key, cbor_profile.encode(fields), MAC_SIZE)
    return cbor_profile.encode(fields)
