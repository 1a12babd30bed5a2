"""The issuer: a balance request in, a MAC'd balance response out.

    issuer = Issuer(Ledger.open(path), Policy(), Faults())
    response_body = issuer.handle_balance_request(request_body)

Before any answer exists (errors.py says what the bridge sends instead):
  fault "unavailable"                               -> IssuerUnavailable
  body not a balance-request                        -> IssuerRequestError
  no key set for the KSN's BDK id, KSN counter bad  -> IssuerSecurityError
  request MAC wrong                                 -> IssuerSecurityError
  the database fails while looking up the key       -> IssuerInternalError
Then, in one SQLite transaction (the journal row, PIN tries and outbox rows together):
  identity (terminal id, trace number) seen with the same request bytes -> the stored
      response, byte for byte (nothing changes); with other bytes -> 94, not journaled
  card not on file          -> 14
  card frozen or blocked    -> 62, with a security alert (kind frozen_card)
  expiry passed (on file or on the card) at the request's time -> 54
  no PIN tries left         -> 75
  PIN block undecipherable  -> 96 (tries unchanged)
  wrong PIN                 -> one try less: 55 with the tries left (key 10), or 75 with
                               0 and a security alert when none are left
  right PIN                 -> tries back to 3; 00 with approval code and balances
  anything unexpected       -> the transaction rolled back; 96, journaled if possible
Faults "delay" and "bad-mac" act on the way out, after all of this.

Alerts: notify.decide says what to do, alerts.make writes the message and, when the
policy sends at once, hands it to the dispatcher's gateway before the response is made
(so the response says 2 sent or 9 gateway failed); alerts.store keeps it in the outbox
with the journal entry.
"""
import logging
import secrets
import sqlite3
import threading
import time

from .. import issuer_keys
from . import alerts, codes, notify
from .cards import is_expired
from .dispatcher import Dispatcher
from .errors import IssuerInternalError, IssuerSecurityError, IssuerUnavailable
from .faults import Faults, corrupt_mac
from .gateways import BuiltinGateway
from .ledger import MAX_PIN_TRIES, Ledger, request_digest
from .messages import balance_response, check_request_mac, parse_balance_request
from .pins import verify_pin
from .policy import Policy

log = logging.getLogger("posbridge.issuer")

KIND_BALANCE_INQUIRY = "balance_inquiry"


class _Outcome:
    """What the rules decided for one request, before it is written down."""

    def __init__(self, code, decision=notify.NOTHING, card=None, tries_left=None,
                 text=None):
        self.code = code
        self.decision = decision
        self.card = card
        self.tries_left = tries_left
        self.text = text                   # text(language, kind) -> the alert's message


class Issuer:
    def __init__(self, ledger: Ledger, policy: Policy = None, faults: Faults = None, *,
                 clock=time.time, sleep=time.sleep, gateways=None):
        self.ledger = ledger
        self.policy = policy or Policy()
        self.faults = faults or Faults()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        if gateways is None:
            gateways = BuiltinGateway("gateway down (fault)" if self.faults.gateway_down else None)
        # alerts sent at once go through it; `posbridge issuer dispatch` sends the rest
        self.dispatcher = Dispatcher(ledger, self.policy, gateways, clock=clock)

    @classmethod
    def open(cls, path, policy=None, faults=None) -> "Issuer":
        """An issuer on the database at `path` (LedgerError if there is none), its
        policy and faults from the environment unless given."""
        return cls(Ledger.open(path), policy or Policy.from_env(), faults or Faults.from_env())

    def close(self):
        self.ledger.close()

    def reachable(self) -> bool:
        """For the bridge's STATUS: False while the "unavailable" fault is set."""
        return not self.faults.unavailable

    # ---- the request ---------------------------------------------------------------

    def handle_balance_request(self, body: bytes) -> bytes:
        """The CBOR balance-response body for a balance-request body (see module doc)."""
        if self.faults.unavailable:
            raise IssuerUnavailable("issuer unavailable")
        request = parse_balance_request(body)
        with self._lock:                   # one connection, shared by the bridge's threads
            bdk = self._key_for(request)
            check_request_mac(bdk, request)
            response = self._answer(request, bdk, request_digest(body))
        if self.faults.delay_s:
            self._sleep(self.faults.delay_s)
        if self.faults.bad_mac:
            response = corrupt_mac(response)
        return response

    def _key_for(self, request) -> bytes:
        try:
            bdk = self.ledger.bdk_for(request.bdk_id)
        except sqlite3.Error as exc:
            raise IssuerInternalError(f"issuer database: {exc}") from None
        if bdk is None:
            raise IssuerSecurityError(f"balance-request refused: no key set for BDK id "
                                      f"{request.bdk_id}")
        return bdk

    def _answer(self, request, bdk, digest) -> bytes:
        try:
            with self.ledger.transaction():
                previous = self.ledger.find_transaction(request.terminal_id,
                                                        request.trace_number)
                if previous is not None:
                    if previous.request_digest == digest:
                        log.info("balance inquiry %s/%d repeated: original answer %s",
                                 request.terminal_id, request.trace_number,
                                 previous.response_code)
                        return previous.response
                    log.warning("balance inquiry %s/%d: identity reused by another "
                                "request: 94", request.terminal_id, request.trace_number)
                    return balance_response(request, bdk, codes.DUPLICATE,
                                            notify.NOTHING.as_cbor_map())
                now = int(self._clock())
                outcome = self._decide(request, bdk, now)
                return self._write(request, bdk, digest, outcome, now)
        except Exception as exc:           # noqa: BLE001 - any failure is a 96, MAC'd
            # the exception's text is not logged: it could hold request data
            log.error("balance inquiry %s/%d failed (%s): 96", request.terminal_id,
                      request.trace_number, type(exc).__name__)
            outcome = _Outcome(codes.SYSTEM_MALFUNCTION)
            try:
                with self.ledger.transaction():
                    return self._write(request, bdk, digest, outcome, int(self._clock()))
            except Exception:              # noqa: BLE001 - answer even if not journaled
                return balance_response(request, bdk, codes.SYSTEM_MALFUNCTION,
                                        notify.NOTHING.as_cbor_map())

    # ---- the rules -----------------------------------------------------------------

    def _decide(self, request, bdk, now) -> _Outcome:
        card = self.ledger.card_by_pan(request.pan)
        if card is None:
            return _Outcome(codes.INVALID_CARD)
        offset = self.policy.utc_offset_min
        when = notify.local_time(now, offset)
        terminal_id = request.terminal_id
        if card.status != "active":
            return _Outcome(codes.RESTRICTED_CARD,
                            self._decide_alert(notify.FROZEN_CARD, card, now),
                            card, text=lambda lang, kind: notify.frozen_card_text(
                                lang, last4=card.last4, when=when, terminal_id=terminal_id,
                                policy=self.policy))
        if (is_expired(card.expiry, request.time, offset)
                or is_expired(request.expiry, request.time, offset)):
            return _Outcome(codes.EXPIRED_CARD, card=card)
        if card.pin_tries_left <= 0:
            return _Outcome(codes.PIN_TRIES_EXCEEDED, card=card, tries_left=0)
        try:
            pin = issuer_keys.decrypt_pin_block(bdk, request.ksn, request.pin_block,
                                                request.pan)
        except (issuer_keys.PinBlockError, issuer_keys.DukptError):
            log.warning("balance inquiry %s/%d: PIN block undecipherable: 96",
                        request.terminal_id, request.trace_number)
            return _Outcome(codes.SYSTEM_MALFUNCTION, card=card)
        pin_ok = verify_pin(pin, card.pin_hash)
        del pin
        if pin_ok:
            if card.pin_tries_left != MAX_PIN_TRIES:
                self.ledger.set_pin_tries(card.id, MAX_PIN_TRIES)
            return _Outcome(codes.APPROVED, self._decide_alert(notify.BALANCE_INQUIRY, card, now),
                            card, text=lambda lang, kind: notify.balance_inquiry_text(
                                lang, last4=card.last4, available=card.available,
                                ledger=card.ledger, currency=card.currency, when=when,
                                terminal_id=terminal_id, policy=self.policy))
        left = card.pin_tries_left - 1
        self.ledger.set_pin_tries(card.id, left)
        if left == 0:
            return _Outcome(codes.PIN_TRIES_EXCEEDED,
                            self._decide_alert(notify.PIN_TRIES_EXCEEDED, card, now), card,
                            tries_left=0, text=lambda lang, kind: notify.pin_tries_exceeded_text(
                                lang, last4=card.last4, when=when, terminal_id=terminal_id,
                                policy=self.policy))
        return _Outcome(codes.INCORRECT_PIN, self._decide_alert(notify.WRONG_PIN, card, now),
                        card, tries_left=left, text=lambda lang, kind: notify.wrong_pin_text(
                            lang, last4=card.last4, tries_left=left, when=when,
                            terminal_id=terminal_id, policy=self.policy))

    def _decide_alert(self, kind, card, now, amount=None) -> notify.Decision:
        return notify.decide(kind, self.policy, card.holder, amount=amount,
                             currency=card.currency, now=now)

    def _write(self, request, bdk, digest, outcome, now) -> bytes:
        """The response for `outcome`, journaled with its outbox row (the caller holds
        the transaction). An alert due at once is sent first: the response says how
        that went."""
        card = outcome.card
        approved = outcome.code == codes.APPROVED
        alert = alerts.make(outcome.decision, card.holder, card.last4, outcome.text,
                            self.dispatcher) if outcome.decision.alerts else None
        decision = alert.decision if alert else outcome.decision
        response = balance_response(
            request, bdk, outcome.code, decision.as_cbor_map(),
            approval_code=f"{secrets.randbelow(10 ** 6):06d}" if approved else None,
            available=card.available if approved else None,
            ledger=card.ledger if approved else None,
            currency=card.currency if approved else None,
            tries_left=outcome.tries_left)
        transaction_id = self.ledger.record_transaction(
            terminal_id=request.terminal_id, trace_number=request.trace_number,
            digest=digest, kind=KIND_BALANCE_INQUIRY, card_id=card.id if card else None,
            response_code=outcome.code, response=response, request_time=request.time,
            currency=card.currency if approved else None, now=now)
        if alert:
            alerts.store(self.ledger, alert, self.policy, now, transaction_id=transaction_id)
        log.info("balance inquiry %s/%d card %s: %s (%s), notification %d",
                 request.terminal_id, request.trace_number,
                 card.masked if card else "not on file", outcome.code,
                 codes.RESPONSE_CODES[outcome.code], decision.status)
        return response
