"""Requests as a provisioned terminal makes them, for the issuer tests, under the public
X9.24-3 test key set the demo issuer holds.

Balance requests are built and their answers checked by the board's own code
(firmware/financial.py and answer.py, run under CPython with the tests/firmware cryptolib stand-in).
Purchases and reversals are built here, on the host, as docs/protocol.md says the board
builds them: the DUKPT working keys of the next KSN from the terminal's initial key
(dukpt.working_key_from_initial, never the BDK), an ISO 9564-1 format 4 PIN block
(psec, an implementation independent of the issuer's), an 8-byte AES-CMAC over the
deterministic CBOR without key 7; their answers are checked the way the board must
(MAC under the verification key, then terminal id, trace, KSN)."""
import hashlib
import hmac
from dataclasses import dataclass
from types import SimpleNamespace

import psec.pinblock

import cbor as board_cbor  # the board's modules, from firmware/
import answer
import financial
import reference_vectors

from posbridge.issuer import dukpt, terminals
from posbridge.link import cbor_profile

# ANSI X9.24-3-2017 supplement test vectors, AES-128 BDK set: BDK, initial key ID and the
# initial key derived from them
REF = reference_vectors.load()
BDK = bytes.fromhex(REF["bdk"])
INITIAL_KEY_ID = bytes.fromhex(REF["initial_key_id"])
INITIAL_KEY = bytes.fromhex(REF["initial_key"])

NOW = 1795334400               # 2026-11-22 08:00 UTC, the board's time in requests
TERMINAL_ID = "T0000001"
MERCHANT_ID = "104110070110001"
MERCHANT_NAME = "DEMO SHOP"
CNY = 156
SecurityError = answer.SecurityError
_USAGE = dukpt.KeyUsage


@dataclass
class HostPending:
    """What a terminal keeps of a purchase or reversal in flight: enough to check the
    answer and to reverse the purchase."""
    kind: str                  # "purchase" or "reversal"
    terminal_id: str
    trace: int
    ksn: bytes
    mac_key: bytes             # the MAC verification key (2001) of `ksn`
    amount: int
    currency: int
    original_trace: "int | None" = None     # a reversal's purchase
    original_ksn: "bytes | None" = None
    digest: bytes = b""        # SHA-256 of the request's bytes, which its answer names


def _keys(initial_key, ksn):
    return [dukpt.working_key_from_initial(initial_key, ksn, usage)
            for usage in (_USAGE.PIN_ENCRYPTION, _USAGE.MAC_GENERATION,
                          _USAGE.MAC_VERIFICATION)]


def _signed(fields, mac_key):
    fields[7] = dukpt.aes_cmac(mac_key, cbor_profile.encode(fields), 8)
    return cbor_profile.encode(fields)


def build_purchase_request(terminal_id, trace, now, card, pin, amount, currency,
                           merchant_id, merchant_name, initial_key, ksn, entry_mode=None,
                           icc=None):
    """(body, HostPending) of a purchase-request (docs/protocol.cddl); `pin` None for
    none, amount None for a balance-request built on the host (a tapped card's)."""
    pin_key, mac_gen, mac_ver = _keys(initial_key, ksn)
    fields = {
        1: terminal_id, 2: trace, 3: now,
        4: {1: card.pan, 2: card.expiry, 3: card.service_code},
        6: ksn,
    }
    if amount is not None:
        fields.update({8: amount, 9: currency, 10: merchant_id, 11: merchant_name})
    if pin is not None:
        fields[5] = psec.pinblock.encipher_pinblock_iso_4(pin_key, pin, card.pan)
    if entry_mode is not None:
        fields[18] = entry_mode
    if icc is not None:
        fields[19] = icc
    body = _signed(fields, mac_gen)
    return body, HostPending("purchase", terminal_id, trace, ksn, mac_ver, amount, currency,
                             digest=hashlib.sha256(body).digest())


def build_reversal_request(terminal_id, trace, now, original, reason, initial_key, ksn,
                           amount=None, currency=None):
    """(body, HostPending) of a reversal-request for the purchase `original` (its
    HostPending), under its own trace number and KSN."""
    _, mac_gen, mac_ver = _keys(initial_key, ksn)
    amount = original.amount if amount is None else amount
    currency = original.currency if currency is None else currency
    fields = {1: terminal_id, 2: trace, 3: now, 6: ksn, 8: amount, 9: currency,
              12: original.trace, 13: original.ksn, 14: reason}
    body = _signed(fields, mac_gen)
    return body, HostPending("reversal", terminal_id, trace, ksn, mac_ver, amount, currency,
                             original.trace, original.ksn, hashlib.sha256(body).digest())


def check_host_response(body, pending):
    """The response's fields once they pass the checks the board makes; SecurityError
    otherwise."""
    try:
        fields = cbor_profile.decode(body)
        mac = fields.pop(15)
        expected = dukpt.aes_cmac(pending.mac_key, cbor_profile.encode(fields), 8)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SecurityError("unreadable response") from None
    if not isinstance(mac, bytes) or not hmac.compare_digest(mac, expected):
        raise SecurityError("response MAC does not verify")
    if (fields.get(1) != pending.terminal_id or fields.get(2) != pending.trace
            or fields.get(9) != pending.ksn
            or (pending.kind == "reversal" and fields.get(12) != pending.original_trace)):
        raise SecurityError("response is not for this transaction")
    if fields.get(17) != pending.digest:
        raise SecurityError("response answers other request bytes")
    code = fields.get(3)
    if not isinstance(code, str) or len(code) != 2:
        raise SecurityError("response has no response code")
    return fields


class TerminalRequestBuilder:
    """Plays a provisioned terminal toward the issuer: builds requests, checks answers."""

    def __init__(self, terminal_id=TERMINAL_ID, initial_key=INITIAL_KEY,
                 initial_key_id=INITIAL_KEY_ID, now=NOW):
        self.terminal_id = terminal_id
        self.now = now          # the terminal's clock: the time its requests carry
        self.keys = SimpleNamespace(initial_key=initial_key, initial_key_id=initial_key_id)
        self.counter = 0
        self.trace = 0

    def request(self, pan, pin="1234", expiry="3012", service_code="201", *, trace=None,
                now=None):
        """(body, pending) of a balance request with the next counter and trace."""
        self.counter += 1
        if trace is None:
            self.trace += 1
            trace = self.trace
        card = SimpleNamespace(pan=pan, expiry=expiry, service_code=service_code)
        now = self.now if now is None else now
        ksn = self.keys.initial_key_id + self.counter.to_bytes(4, "big")
        # the board's keys of this KSN, as terminal_keys.take hands them to financial
        keys = [bytearray(k) for k in _keys(self.keys.initial_key, ksn)]
        return financial.build_request(self.terminal_id, now, card,
                                       bytearray(pin.encode()), (trace, ksn, keys))

    def _next(self, trace):
        """(trace, KSN) of the next transaction: a new DUKPT counter every time."""
        self.counter += 1
        if trace is None:
            self.trace += 1
            trace = self.trace
        return trace, self.keys.initial_key_id + self.counter.to_bytes(4, "big")

    def purchase(self, pan, amount, currency=CNY, pin="1234", expiry="3012",
                 service_code="201", *, merchant_id=MERCHANT_ID,
                 merchant_name=MERCHANT_NAME, trace=None, now=None, entry_mode=None,
                 icc=None):
        """(body, HostPending) of a purchase with the next counter and trace; amount
        None: a balance request built here (for a tapped card's ICC data)."""
        trace, ksn = self._next(trace)
        now = self.now if now is None else now
        card = SimpleNamespace(pan=pan, expiry=expiry, service_code=service_code)
        return build_purchase_request(self.terminal_id, trace, now, card, pin, amount,
                                      currency, merchant_id, merchant_name,
                                      self.keys.initial_key, ksn, entry_mode, icc)

    def reversal(self, original, reason=1, *, trace=None, now=None, amount=None,
                 currency=None):
        """(body, HostPending) of a reversal of the purchase `original` (its pending),
        with the next counter and trace."""
        trace, ksn = self._next(trace)
        now = self.now if now is None else now
        return build_reversal_request(self.terminal_id, trace, now, original, reason,
                                      self.keys.initial_key, ksn, amount, currency)

    def check(self, body, pending):
        """The response's fields once the board accepts it (SecurityError if not)."""
        if isinstance(pending, HostPending):
            return check_host_response(body, pending)
        return answer.check_response(body, pending, self.terminal_id)


def refused_unauthenticated(response, request, terminal, pending):
    """The fields of `response`, the issuer's answer to `request` (bytes a test altered
    from those of `pending`'s request: its MAC no longer right), once they show it is a
    63, MAC'd under the request's KSN and naming `request`'s bytes: a terminal whose own
    request failed its MAC learns why, and `terminal`, which sent `pending`'s request,
    refuses it (it answers other bytes)."""
    fields = cbor_profile.decode(response)
    mac = fields.pop(15)
    assert mac == dukpt.response_mac(BDK, fields[9], cbor_profile.encode(fields), 8)
    assert fields[3] == "63" and fields[17] == hashlib.sha256(request).digest()
    try:
        terminal.check(response, pending)
    except SecurityError:
        return fields
    raise AssertionError("the refusal of altered bytes passed for the original's answer")


def rebound(pending, body):
    """`pending` made the pending of `body`, a request the test altered and MAC'd again
    (resign): the answer names those bytes."""
    pending.digest = hashlib.sha256(body).digest()
    return pending


def provisioned_terminal(ledger, terminal_id, derivation_id, *, merchant_id=MERCHANT_ID,
                         merchant_name=MERCHANT_NAME, force=False):
    """A terminal registered at the issuer as `posbridge provision` registers one (its
    initial key ID = the test BDK ID | `derivation_id`, 8 hex digits), and the builder
    that plays it: a second terminal beside the demo's T0000001."""
    key_id = INITIAL_KEY_ID[:4] + bytes.fromhex(derivation_id)
    terminals.register(ledger, terminal_id, key_id, merchant_id, merchant_name, force=force)
    return TerminalRequestBuilder(terminal_id, dukpt.derive_initial_key(BDK, key_id), key_id)


def resign(fields, bdk=BDK):
    """The request body for `fields` (a decoded request), MAC'd again under its KSN:
    for requests the board would never build but whose MAC is right."""
    fields = {k: v for k, v in fields.items() if k != 7}
    key = dukpt.derive_working_key(bdk, fields[6], dukpt.KeyUsage.MAC_GENERATION)
    fields[7] = dukpt.aes_cmac(key, cbor_profile.encode(fields), 8)
    return cbor_profile.encode(fields)


def board_encode(obj):
    return board_cbor.encode(obj)
