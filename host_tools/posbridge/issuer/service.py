"""The issuer: a financial request in, a MAC'd response out.

    issuer = Issuer(Ledger.open(path), Policy(), Faults())   # keys: ledger.keys
    response_body = issuer.handle(mtype, request_body)
    # the body of a messages.ROUTES[mtype][0] message: 0x10 -> 0x11, 0x12 -> 0x13,
    # 0x14 -> 0x15

Before any answer can be MAC'd (errors.py says what the bridge sends instead):
  not a financial request type                      -> IssuerRequestError
  fault "unavailable"                               -> IssuerUnavailable
  body not a request of its type                    -> IssuerRequestError
  no key set for the KSN's BDK id, KSN counter bad  -> IssuerSecurityError
Every answer from here on is MAC'd under the request's KSN and names the SHA-256 of the
request bytes it answers (the board takes only an answer to the bytes it sent):
  request MAC wrong         -> 63, nothing journaled, nothing changed; logged as a
                               security event (an altered copy, or the terminal's keys)
Then, in one transaction (the journal row, PIN tries, balances with their ledger
entry, the KSN counter and outbox rows together; an alert goes out only after its
COMMIT, below):
  KSN journaled with the same request bytes -> the stored response, byte for byte
      (nothing changes)
  terminal not registered, KSN's initial key not the terminal's, a reversal's original
      KSN not the terminal's, KSN counter used (terminals.admit) -> IssuerSecurityError
  (terminal id, trace number) journaled within ledger.IDENTITY_WINDOW_S -> 94, journaled
Balance inquiry and purchase:
  time (key 3) more than max_age_s before the issuer's clock, or more than
      max_ahead_s after it -> 68, not charged (journaled): a request held on the way,
      or a terminal clock set wrong, never charges
  purchase whose identity a reversal already closed -> 94, not charged (journaled)
  card not on file          -> 14
  card frozen or blocked    -> 62, with a security alert (kind frozen_card)
  expiry passed (on file or on the card) at the issuer's time -> 54
  a tapped card (entry mode 7 and ICC data, cryptogram.py; docs/protocol.md,
  "Contactless"):
    entry mode and ICC data disagree, ICC data malformed or incomplete, not an ARQC,
    or its type, amount or currency not the request's, a PAN in it (5A, 57) not the
    request's card, its date (9A) more than a day from the issuer's -> 30
    no issuer master keys for the card's range          -> 96
    ARQC wrong, or ATC not above the card's last (a replay) -> 82, with a security
        alert (kind cryptogram_failure); the ATC is kept only from a verified ARQC
    verified: every answer from here on carries the ARPC (key 18) over its code
  no PIN block: a contactless purchase at or below the contactless CVM limit goes on
      to the amount rules with no PIN check; anything else -> 55, no try spent
  no PIN tries left         -> 75
  PIN block undecipherable  -> 96 (tries unchanged)
  (the key store checks the PIN block against the card's IBM 3624 offset; a card
   migrated with a sealed scrypt hash gets its offset at its first right PIN)
  wrong PIN                 -> one try less: 55 with the tries left (key 10), or 75 with
                               0 and a security alert when none are left
  right PIN                 -> tries back to 3; a balance inquiry is approved (00)
  purchase, right PIN:
    currency not the account's                          -> 13
    amount over the card's or the account's single-purchase limit -> 61
    amount over available + credit limit                -> 51
    otherwise                 -> 00: debited, with its ledger entry, approval code,
                                 the balances after it and the purchase alert (kind
                                 purchase, or large_amount above the large-amount limit)
  anything unexpected       -> the transaction rolled back; 96, journaled if possible
Reversal (response code 00 = acknowledged, the outcome in key 16, the alert in key 8):
  the original purchase (terminal id, original trace, original KSN) approved and not
      reversed              -> credited back, ledger entry, the purchase marked: 1, and
                               the reversal alert (kind reversal) if the purchase was
                               alerted (notify.py, rules R1-R6); 10 for the others
  reversed already          -> nothing more: 3
  declined, or not found    -> nothing to credit: 2. Journaled either way, so that an
      original that arrives after its reversal is declined (94) and never charged.
  never refused for its age: a reversal waits on the terminal's flash as long as it must
  an approved purchase reversed because its answer failed the board's checks or an ERROR
      came in its place (reasons 2 and 4) is logged as a security event: the approval
      was altered or replaced on the way
  anything unexpected       -> 96, not journaled: the same reversal sent again is
                               processed afresh
Faults "delay" and "bad-mac" act on the way out, after all of this.

Alerts, a transactional outbox (alerts.py): notify.decide says what to do; alerts.make
writes the message in the cardholder's language; alerts.store puts it in the outbox in
the transaction that journals the request and moves the money, and the response
journaled with it says 1 queued for an alert due at once. Only after that transaction's
COMMIT is the alert handed to the gateway (_send_after_commit), and the response, then
saying 2 sent (11 for a security alert) or 9 gateway failed, is journaled again with the
outbox row's result in a second transaction. A transaction that rolls back (a failed
debit, a failed COMMIT) takes its outbox row with it: nothing was sent. If the issuer
stops between the two, the row's claim lapses and the dispatcher sends it; the stored
answer ("queued") stays true.
"""
import logging
import secrets
import threading
import time

from . import dukpt
from . import alerts, cards, codes, cryptogram, keystore, notify, outbox, terminals
from .cards import MAX_PIN_TRIES, is_expired
from .dispatcher import Dispatcher
from .errors import IssuerRequestError, IssuerSecurityError, IssuerUnavailable
from .faults import Faults, corrupt_mac
from .gateways import BuiltinGateway
from .ledger import Ledger, request_digest
from .messages import (BALANCE_INQUIRY, PURCHASE, REVERSAL, ROUTES, balance_response,
                       request_mac_ok, reversal_response)
from .money import format_amount
from .policy import Policy

log = logging.getLogger("posbridge.issuer")

_LABELS = {BALANCE_INQUIRY: "balance inquiry", PURCHASE: "purchase", REVERSAL: "reversal"}

# How far a balance inquiry's or purchase's time (key 3, the terminal's clock) may be
# from the issuer's clock (docs/issuer.md, "Request time"): the terminal's 15 s answer
# timeout and a merchant's PC clock some minutes slow fit in the age; a PC clock a
# minute fast in the skew. A request held on the way is answerable for at most their
# sum after it was made.
MAX_REQUEST_AGE_S = 300
MAX_REQUEST_AHEAD_S = 60
# The issuer's contactless CVM limit (minor units): a tapped purchase up to it may come
# without a PIN. The terminal's own limit (firmware settings) is at most this one.
CONTACTLESS_CVM_LIMIT = 100_000       # CNY 1,000.00
# reversal reasons (docs/protocol.md, REVERSAL_REQUEST) that say an approval did not
# reach the terminal as the issuer sent it: it failed the board's checks, or an ERROR
# came in its place
_ANSWER_ALTERED = (2, 4)


class _Outcome:
    """What the rules decided for one request, before it is written down."""

    def __init__(self, code, decision=notify.NOTHING, card=None, tries_left=None,
                 text=None, debit=0, available=None, ledger=None, reversed_by=None,
                 icc=None):
        self.code = code
        self.decision = decision
        self.card = card
        self.tries_left = tries_left
        self.text = text                # text(language, kind) -> the alert's message
        self.debit = debit              # minor units taken from the account (purchase)
        self.available = available      # balances after the debit, when there is one
        self.ledger = ledger
        self.reversed_by = reversed_by  # the reversal that came before this purchase
        self.terminal = None            # the registry's entry of the request's terminal
        self.icc = icc                  # a verified chip cryptogram: the answer has an ARPC


class _Reply:
    """An answer journaled in the transaction, and the alert to send after its COMMIT."""

    def __init__(self, response, alert=None, transaction_id=None, respond=None):
        self.response = response              # as journaled: the alert not sent yet
        self.alert = alert
        self.transaction_id = transaction_id
        self.respond = respond                # Decision -> the response saying it


def _label(request, number=None):
    return (f"{_LABELS[request.kind]} {request.terminal_id}/"
            f"{request.trace_number if number is None else number}")


class Issuer:
    def __init__(self, ledger: Ledger, policy: Policy = None, faults: Faults = None, *,
                 clock=time.time, sleep=time.sleep, gateways=None,
                 max_age_s: int = MAX_REQUEST_AGE_S, max_ahead_s: int = MAX_REQUEST_AHEAD_S,
                 contactless_cvm_limit: int = CONTACTLESS_CVM_LIMIT):
        self.ledger = ledger
        # every key operation (MACs, PIN check) goes through it; no key is held here
        self.keys = ledger.keys
        self.policy = policy or Policy()
        self.faults = faults or Faults()
        self.max_age_s = max_age_s
        self.max_ahead_s = max_ahead_s
        self.contactless_cvm_limit = contactless_cvm_limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        if gateways is None:
            gateways = BuiltinGateway("gateway down (fault)" if self.faults.gateway_down else None)
        # alerts sent at once go through it; `posbridge issuer dispatch` sends the rest
        self.dispatcher = Dispatcher(ledger, self.policy, gateways, clock=clock)

    @classmethod
    def open(cls, path, policy=None, faults=None, keys=None) -> "Issuer":
        """An issuer on the database at `path` (LedgerError if there is none) and its
        key store (`keys`, by default beside the database), its policy and faults from
        the environment unless given."""
        return cls(Ledger.open(path, keys), policy or Policy.from_env(),
                   faults or Faults.from_env())

    def close(self):
        self.ledger.close()

    def reachable(self) -> bool:
        """For the bridge's STATUS: False while the "unavailable" fault is set."""
        return not self.faults.unavailable

    # ---- the requests --------------------------------------------------------------

    def handle(self, mtype: int, body: bytes) -> bytes:
        """The CBOR response body to the financial request `body` of type `mtype`; its
        type is ROUTES[mtype][0]. An IssuerError instead when there is no answer."""
        route = ROUTES.get(mtype)
        if route is None:
            raise IssuerRequestError(f"message type {mtype:#04x} is not a financial request")
        response_type, parse = route
        if self.faults.unavailable:
            raise IssuerUnavailable("issuer unavailable")
        request = parse(body)
        with self._lock:                   # one connection, shared by the bridge's threads
            keys = self._key_for(request)
            if request_mac_ok(keys, request):
                response = self._answer(request, keys, request_digest(body))
            else:
                response = self._refuse_unauthenticated(request, keys)
        if self.faults.delay_s:
            self._sleep(self.faults.delay_s)
        if self.faults.bad_mac:
            response = corrupt_mac(response_type, response)
        return response

    def _key_for(self, request) -> "keystore.KeyStore":
        """The key store, once it is known to hold the request's key set."""
        if not self.keys.has_key_set(request.bdk_id):
            raise IssuerSecurityError(f"{request.name} refused: no key set for BDK id "
                                      f"{request.bdk_id}")
        return self.keys

    def _refuse_unauthenticated(self, request, keys) -> bytes:
        """63 to a request whose MAC is wrong: MAC'd, so that the terminal whose request
        it is may take it, and bound to these very bytes, so that an altered copy's
        refusal is never taken for the original's answer. Nothing is journaled: an
        unauthenticated request takes no identity and spends no PIN try."""
        known = self.ledger.find_transaction(request.terminal_id, request.trace_number)
        log.warning("security: %s refused: request MAC does not match (KSN %s)%s: 63",
                    _label(request), request.ksn.hex().upper(),
                    ", an identity already journaled: an altered copy" if known else "")
        return self._declined(request, keys, codes.SECURITY_VIOLATION)

    def _declined(self, request, keys, code) -> bytes:
        """An answer that changes nothing: no balances, nothing alerted."""
        if request.kind == REVERSAL:
            return reversal_response(request, keys, code)
        return balance_response(request, keys, code, notify.NOTHING.as_cbor_map())

    def _answer(self, request, keys, digest) -> bytes:
        try:
            # run again from the start if a concurrent process's transaction collided
            # with it (PostgreSQL): the second run sees what the first committed
            reply = self.ledger.atomically(lambda: self._journal(request, keys, digest))
        except IssuerSecurityError:
            raise                          # refused: nothing written, no answer
        except Exception as exc:           # noqa: BLE001 - any failure is a 96, MAC'd
            # the exception's text is not logged: it could hold request data
            log.error("%s failed (%s): 96", _label(request), type(exc).__name__)
            if request.kind == REVERSAL:
                # not journaled: the board keeps the reversal and sends it again, and
                # the same bytes must then be processed, not answered 96 for ever
                return self._declined(request, keys, codes.SYSTEM_MALFUNCTION)
            outcome = _Outcome(codes.SYSTEM_MALFUNCTION)

            def malfunction():
                outcome.terminal = terminals.admit(self.ledger, request)
                return self._write(request, keys, digest, outcome,
                                   int(self._clock())).response
            try:
                return self.ledger.atomically(malfunction)
            except IssuerSecurityError:
                raise
            except Exception:              # noqa: BLE001 - answer even if not journaled
                return self._declined(request, keys, codes.SYSTEM_MALFUNCTION)
        if isinstance(reply, bytes):       # answered from the journal, or a duplicate
            return reply
        # committed: outside the try, so that nothing after this can turn a charged
        # purchase into a 96
        return self._send_after_commit(reply)

    def _journal(self, request, keys, digest) -> "bytes | _Reply":
        """The request decided and journaled (the caller holds the transaction): the
        stored answer of a retransmission, a duplicate's 94, or the reply to send once
        committed."""
        previous = self.ledger.find_by_ksn(request.ksn)
        if previous is not None and previous.request_digest == digest:
            # before the counter check: a retransmission reuses its KSN
            log.info("%s repeated: original answer %s", _label(request),
                     previous.response_code)
            return previous.response
        terminal = terminals.admit(self.ledger, request)
        now = int(self._clock())
        if self.ledger.identity_in_use(request.terminal_id, request.trace_number, now):
            log.warning("%s: identity reused by another request: 94", _label(request))
            return self._duplicate(request, keys, digest, terminal, now)
        if request.kind == REVERSAL:
            return self._reverse(request, keys, digest, now)
        outcome = self._decide(request, keys, now, terminal)
        return self._write(request, keys, digest, outcome, now)

    def _send_after_commit(self, reply: _Reply) -> bytes:
        """The answer to a committed request, once its alert (if due at once) has had
        its one try through the gateway."""
        alert = reply.alert
        if alert is None or not alert.decision.immediate:
            return reply.response
        try:
            alert = alerts.deliver(alert, self.dispatcher)
        except Exception as exc:           # noqa: BLE001 - the money is committed: answer
            # the row stays claimed until its lease lapses; then the dispatcher sends it
            log.error("alert %s: gateway error (%s); left to the dispatcher",
                      alert.message_id, type(exc).__name__)
            return reply.response
        response = reply.respond(alert.decision)
        def record():
            alerts.record(self.ledger, alert, self.policy, int(self._clock()))
            self.ledger.set_response(reply.transaction_id, response)
        try:
            self.ledger.atomically(record)
        except Exception as exc:           # noqa: BLE001 - answer even if not recorded
            log.error("alert %s: result not recorded (%s)", alert.message_id,
                      type(exc).__name__)
        log.info("alert %s: notification %d", alert.message_id, alert.decision.status)
        return response

    def _duplicate(self, request, keys, digest, terminal, now) -> bytes:
        """94 to a request whose (terminal id, trace number) another one took: journaled
        under its own KSN, so a retransmission gets the same 94 and the KSN stays used.
        Never an acknowledgement: a reversal's row names no original."""
        response = self._declined(request, keys, codes.DUPLICATE)
        extra = {}
        if request.kind == PURCHASE:
            extra = dict(amount=request.amount, currency=request.currency,
                         merchant_id=terminal.merchant_id,
                         merchant_name=terminal.merchant_name)
        self.ledger.record_transaction(
            terminal_id=request.terminal_id, trace_number=request.trace_number,
            digest=digest, kind=request.kind, card_id=None, response_code=codes.DUPLICATE,
            response=response, request_time=request.time, now=now, ksn=request.ksn,
            **extra)
        return response

    # ---- the rules: balance inquiry and purchase ----------------------------------

    def _decide(self, request, keys, now, terminal) -> _Outcome:
        outcome = self._rules(request, keys, now, terminal)
        outcome.terminal = terminal
        return outcome

    def _rules(self, request, keys, now, terminal) -> _Outcome:
        card = self.ledger.card_by_pan(request.pan)
        # the time is under the request's MAC, but the terminal's clock is set by the
        # bridge unauthenticated: a wrong one refuses, never charges
        behind = now - request.time
        if not -self.max_ahead_s <= behind <= self.max_age_s:
            log.warning("%s: its time is %d s %s the issuer's clock: 68, not charged",
                        _label(request), abs(behind), "behind" if behind > 0 else "ahead of")
            return _Outcome(codes.TIME_OUT_OF_WINDOW, card=card)
        if request.kind == PURCHASE:
            reversal_id = self.ledger.find_reversal_of(request.terminal_id, request.ksn)
            if reversal_id is not None:
                log.warning("%s arrived after its reversal: 94, not charged",
                            _label(request))
                return _Outcome(codes.DUPLICATE, card=card, reversed_by=reversal_id)
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
        # at the issuer's own time: the terminal's clock may be unset (0) or wrong
        if (is_expired(card.expiry, now, offset)
                or is_expired(request.expiry, now, offset)):
            return _Outcome(codes.EXPIRED_CARD, card=card)
        icc = None
        if request.entry_mode == cryptogram.ENTRY_MODE_CONTACTLESS or request.icc is not None:
            refused, icc = self._chip(request, card, now, when)
            if refused is not None:
                return refused
        outcome = self._cardholder(request, keys, card, now, when, terminal, icc)
        outcome.icc = icc
        return outcome

    def _chip(self, request, card, now, when):
        """(None, the ICC data) once the card's cryptogram is verified and its ATC
        recorded; (the refusal, None) otherwise. Nothing of the ICC data is logged."""
        def refuse(why):
            log.warning("%s card %s: %s: 30", _label(request), card.masked, why)
            return _Outcome(codes.FORMAT_ERROR, card=card), None
        if request.entry_mode != cryptogram.ENTRY_MODE_CONTACTLESS:
            return refuse(f"ICC data with entry mode {request.entry_mode or 90}")
        if request.icc is None:
            return refuse("entry mode contactless without ICC data")
        try:
            icc = cryptogram.IccData.parse(request.icc)
        except cryptogram.IccDataError as exc:
            return refuse(str(exc))
        wanted = (cryptogram.TYPE_PURCHASE if request.kind == PURCHASE
                  else cryptogram.TYPE_BALANCE_INQUIRY)
        if not icc.is_arqc:
            return refuse("the card's cryptogram is not an ARQC (9F27)")
        if icc.transaction_type != wanted:
            return refuse(f"transaction type (9C) {icc.transaction_type:02X}, not {wanted:02X}")
        if request.kind == PURCHASE and (icc.amount, icc.currency) != (request.amount,
                                                                         request.currency):
            return refuse("the amount or currency the card signed (9F02, 5F2A) is not "
                          "the request's")
        other = icc.pan_differs(request.pan)
        if other is not None:
            return refuse(f"the card number in the ICC data ({other}) is not the request's")
        try:
            signed_day = icc.date
        except cryptogram.IccDataError as exc:
            return refuse(str(exc))
        # the card signs the date the terminal gives it: a cryptogram drawn from the card
        # on another day (a skim kept back, a rogue reader's pre-play) is not this
        # transaction's. A day either way: a terminal near midnight, another time zone
        today = notify.local_datetime(now, self.policy.utc_offset_min).date()
        if abs((signed_day - today).days) > 1:
            return refuse("the date the card signed (9A) is not the issuer's day")
        try:
            verified = self.keys.verify_arqc(card.pan, icc)
        except keystore.UnknownCardRange as exc:
            log.error("%s card %s: %s: 96", _label(request), card.masked, exc)
            return _Outcome(codes.SYSTEM_MALFUNCTION, card=card), None
        if not verified:
            why = "ARQC wrong"
        elif not cards.advance_atc(self.ledger, card.id, icc.atc):
            why = f"ATC {icc.atc} not above the card's last: a replayed cryptogram"
        else:
            log.info("%s card %s: %s ARQC verified, ATC %d", _label(request), card.masked,
                     icc.cvn, icc.atc)
            return None, icc
        log.warning("security: %s card %s: %s (%s): 82", _label(request), card.masked,
                    why, icc.cvn)
        terminal_id = request.terminal_id
        return _Outcome(codes.CRYPTOGRAM_FAILURE,
                        self._decide_alert(notify.CRYPTOGRAM_FAILURE, card, now), card,
                        text=lambda lang, kind: notify.cryptogram_failure_text(
                            lang, last4=card.last4, when=when, terminal_id=terminal_id,
                            policy=self.policy)), None

    def _cardholder(self, request, keys, card, now, when, terminal, icc) -> _Outcome:
        """The cardholder verification (the PIN, or none for a contactless purchase up
        to the CVM limit), then the request's own rules."""
        terminal_id = request.terminal_id
        if request.pin_block is None:
            if (icc is not None and request.kind == PURCHASE
                    and request.amount <= self.contactless_cvm_limit):
                return self._purchase(request, card, now, when, terminal)
            log.warning("%s card %s: no PIN block (%s): 55, no try spent", _label(request),
                        card.masked, "above the contactless CVM limit" if icc is not None
                        and request.kind == PURCHASE else "a PIN is required")
            return _Outcome(codes.INCORRECT_PIN, card=card)
        if card.pin_tries_left <= 0:
            return _Outcome(codes.PIN_TRIES_EXCEEDED, card=card, tries_left=0)
        try:
            # the PIN is deciphered and compared inside the key store, never here
            check = keys.verify_pin(request.ksn, request.pin_block, request.pan,
                                    card.pin_reference)
        except (dukpt.PinBlockError, dukpt.DukptError):
            log.warning("%s: PIN block undecipherable: 96", _label(request))
            return _Outcome(codes.SYSTEM_MALFUNCTION, card=card)
        if check.replacement is not None:
            cards.set_pin_reference(self.ledger, card.id, check.replacement)
        if check.ok:
            if card.pin_tries_left != MAX_PIN_TRIES:
                cards.set_pin_tries(self.ledger, card.id, MAX_PIN_TRIES)
            if request.kind == PURCHASE:
                return self._purchase(request, card, now, when, terminal)
            return _Outcome(codes.APPROVED, self._decide_alert(notify.BALANCE_INQUIRY, card, now),
                            card, text=lambda lang, kind: notify.balance_inquiry_text(
                                lang, last4=card.last4, available=card.available,
                                ledger=card.ledger, currency=card.currency, when=when,
                                terminal_id=terminal_id, policy=self.policy))
        left = card.pin_tries_left - 1
        cards.set_pin_tries(self.ledger, card.id, left)
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

    def _purchase(self, request, card, now, when, terminal) -> _Outcome:
        """The amount rules of a purchase whose card and PIN are good."""
        amount = request.amount
        if request.currency != card.currency:
            return _Outcome(codes.INVALID_AMOUNT, card=card)
        limits = [v for v in (card.purchase_limit, card.account_purchase_limit)
                  if v is not None]
        if limits and amount > min(limits):
            return _Outcome(codes.EXCEEDS_LIMIT, card=card)
        if amount > card.available + card.credit_limit:
            return _Outcome(codes.INSUFFICIENT_FUNDS, card=card)
        available, ledger = card.available - amount, card.ledger - amount
        decision = self._decide_alert(notify.PURCHASE, card, now, amount=amount)
        fields = dict(last4=card.last4, amount=amount, currency=request.currency,
                      merchant=terminal.merchant_name, when=when, available=available,
                      terminal_id=request.terminal_id, policy=self.policy)

        def text(lang, kind):               # kind: purchase, or large_amount above the limit
            if kind == notify.LARGE_AMOUNT:
                return notify.large_amount_text(
                    lang, limit=notify.large_amount_limit(self.policy, card.holder), **fields)
            return notify.purchase_text(lang, **fields)
        return _Outcome(codes.APPROVED, decision, card, text=text, debit=amount,
                        available=available, ledger=ledger)

    def _decide_alert(self, kind, card, now, amount=None) -> notify.Decision:
        return notify.decide(kind, self.policy, card.holder, amount=amount,
                             currency=card.currency, now=now)

    def _write(self, request, keys, digest, outcome, now) -> _Reply:
        """The response for `outcome`, journaled with its ledger entry and outbox row
        (the caller holds the transaction), and the alert to send after the COMMIT. The
        journal row and the debit come first, then the alert is made and stored."""
        card = outcome.card
        approved = outcome.code == codes.APPROVED
        approval_code = f"{secrets.randbelow(10 ** 6):06d}" if approved else None
        if approved and outcome.available is None:          # a balance inquiry
            outcome.available, outcome.ledger = card.available, card.ledger
        extra = {"ksn": request.ksn, "approval_code": approval_code}
        # the card checks the issuer's answer by it (cryptogram.py)
        arpc = (self.keys.arpc(card.pan, outcome.icc, outcome.code)
                if outcome.icc is not None else None)
        if request.kind == PURCHASE:
            # the registry's merchant, never the request's (terminals.py)
            extra.update(amount=request.amount, currency=request.currency,
                         merchant_id=outcome.terminal.merchant_id,
                         merchant_name=outcome.terminal.merchant_name,
                         reversed_by=outcome.reversed_by)
        elif approved:
            extra["currency"] = card.currency
        transaction_id = self.ledger.record_transaction(
            terminal_id=request.terminal_id, trace_number=request.trace_number,
            digest=digest, kind=request.kind, card_id=card.id if card else None,
            response_code=outcome.code, response=b"", request_time=request.time,
            now=now, **extra)
        if outcome.debit:
            after = self.ledger.post(account_id=card.account_id,
                                     transaction_id=transaction_id, amount=-outcome.debit,
                                     now=now)
            if after != (outcome.available, outcome.ledger):
                # the balances the answer states are not the ones written: roll back
                raise RuntimeError("balances changed under the purchase")
        alert = alerts.make(outcome.decision, card.holder, card.last4, outcome.text) \
            if outcome.decision.alerts else None
        decision = outcome.decision.before_send()

        def respond(decision):
            return balance_response(
                request, keys, outcome.code, decision.as_cbor_map(),
                approval_code=approval_code, available=outcome.available,
                ledger=outcome.ledger, currency=card.currency if approved else None,
                tries_left=outcome.tries_left, arpc=arpc)
        response = respond(decision)
        self.ledger.set_response(transaction_id, response)
        if alert:
            alerts.store(self.ledger, alert, self.policy, now, transaction_id=transaction_id)
        amount = (f" {format_amount(request.amount, request.currency)}"
                  if request.kind == PURCHASE else "")
        log.info("%s card %s%s: %s (%s), notification %d", _label(request),
                 card.masked if card else "not on file", amount, outcome.code,
                 codes.RESPONSE_CODES[outcome.code], decision.status)
        return _Reply(response, alert, transaction_id, respond)

    # ---- the rules: reversal -------------------------------------------------------

    def _reverse(self, request, keys, digest, now) -> _Reply:
        """Acknowledge the reversal (00) with what it did; journal it, credit the
        purchase back at most once, and alert the credit as notify.py's reversal rules
        say (the caller holds the transaction). The purchase's own alert stays as it
        is: it went out, or goes out before this one."""
        # the original KSN names the purchase; its trace may have wrapped since
        original = self.ledger.find_by_ksn(request.original_ksn)
        found = (original is not None and original.kind == PURCHASE
                 and original.terminal_id == request.terminal_id
                 and original.trace_number == request.original_trace)
        original_label = _label(request, request.original_trace)
        if not found:
            # nothing of this request was charged; the row journaled below makes the
            # original be declined if it ever arrives
            outcome, credit = codes.NOTHING_CHARGED, 0
            log.info("reversal %s/%d of %s: original not found, recorded",
                     request.terminal_id, request.trace_number, original_label)
        elif original.response_code != codes.APPROVED:
            outcome, credit = codes.NOTHING_CHARGED, 0
        elif original.reversed_by is not None:
            outcome, credit = codes.ALREADY_REVERSED, 0
        else:
            outcome, credit = codes.REVERSED, original.amount
            if request.reason in _ANSWER_ALTERED:
                log.warning("security: %s was approved, yet its terminal reverses it "
                            "(%s): the answer was altered or replaced on the way; "
                            "reversal %s/%d", original_label,
                            codes.REVERSAL_REASONS[request.reason], request.terminal_id,
                            request.trace_number)
            if (request.amount, request.currency) != (original.amount, original.currency):
                log.warning("reversal %s/%d of %s: amount %s differs from the purchase's "
                            "%s: the purchase's is credited", request.terminal_id,
                            request.trace_number, original_label,
                            format_amount(request.amount, request.currency),
                            format_amount(original.amount, original.currency))
        reversal_id = self.ledger.record_transaction(
            terminal_id=request.terminal_id, trace_number=request.trace_number,
            digest=digest, kind=REVERSAL, card_id=original.card_id if found else None,
            response_code=codes.APPROVED, response=b"", request_time=request.time,
            now=now, amount=request.amount, currency=request.currency, ksn=request.ksn,
            original_trace=request.original_trace, original_ksn=request.original_ksn,
            reversal_reason=request.reason, reversal_outcome=outcome,
            original_id=original.id if found else None)
        if found and original.reversed_by is None:
            self.ledger.mark_reversed(original.id, reversal_id)
        decision, alert = notify.NOTHING, None
        if credit:
            card = self.ledger.card_by_id(original.card_id)
            available, _ = self.ledger.post(account_id=card.account_id,
                                            transaction_id=reversal_id, amount=credit,
                                            now=now)
            decision = notify.decide(
                notify.REVERSAL, self.policy, card.holder, amount=credit,
                currency=original.currency, now=now,
                purchase_alert=outbox.purchase_alert(self.ledger, original.id))
            when = notify.local_time(now, self.policy.utc_offset_min)
            alert = alerts.make(decision, card.holder, card.last4, lambda lang, kind:
                                notify.reversal_text(
                                    lang, last4=card.last4, amount=credit,
                                    currency=original.currency,
                                    merchant=original.merchant_name or "", when=when,
                                    available=available, terminal_id=request.terminal_id,
                                    policy=self.policy))

        def respond(decision):
            return reversal_response(request, keys, codes.APPROVED, outcome,
                                     decision.as_cbor_map())
        response = respond(decision.before_send())
        self.ledger.set_response(reversal_id, response)
        if alert:
            alerts.store(self.ledger, alert, self.policy, now, transaction_id=reversal_id)
        log.info("reversal %s/%d of %s (%s): %s, notification %d", request.terminal_id,
                 request.trace_number, original_label,
                 codes.REVERSAL_REASONS[request.reason], codes.REVERSAL_OUTCOMES[outcome],
                 decision.before_send().status)
        return _Reply(response, alert, reversal_id, respond)
