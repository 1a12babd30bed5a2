"""The outbox: the alerts made for cardholders, as a queue. This module is the only
writer of the `outbox` table: add() puts an alert in, the record_* functions say what
became of a send; due() and waiting_count() are the dispatcher's questions, and
Ledger.outbox lists every row for a person or a test.

A row waits while its status is queued (for the dispatcher), held (quiet hours) or
failed (the gateway refused it; tried again later); it is due once `next_attempt_at`
has come. A row is never deleted: a failed one stays with its reason until a later
attempt sends it.
"""
import secrets
import time
from dataclasses import dataclass

from .codes import OUTBOX_STATUSES
from .errors import LedgerError

WAITING = ("queued", "held", "failed")


@dataclass(frozen=True)
class Waiting:
    id: int
    message_id: str
    cardholder_id: "int | None"
    kind: str
    channel: str
    destination: str             # masked
    language: "str | None"
    text: str
    status: str
    attempts: int


def new_message_id() -> str:
    """An alert's id: 16 hex digits, random (it says nothing about the card)."""
    return secrets.token_hex(8)


def add(ledger, *, transaction_id, cardholder_id, kind: str, card_last4: str, channel: str,
        destination: str, text: str, status: str, now=None, message_id=None, language=None,
        next_attempt_at=None, attempts=None, reason=None, sent_at=None, gateway_ref=None,
        account_event_id=None) -> int:
    """One alert; returns its row id. A row that waits (queued, held, failed) is due at
    `next_attempt_at` (default: now); a "sent" row counts one attempt."""
    if status not in OUTBOX_STATUSES:
        raise LedgerError(f"outbox status {status!r}: one of {', '.join(OUTBOX_STATUSES)}")
    now = int(time.time() if now is None else now)
    if status == "sent":
        attempts = 1 if attempts is None else attempts
        sent_at, next_attempt_at = now if sent_at is None else sent_at, None
    elif next_attempt_at is None:
        next_attempt_at = now
    return ledger.execute(
        "INSERT INTO outbox (transaction_id, account_event_id, cardholder_id, message_id, "
        "kind, card_last4, channel, destination, language, text, status, attempts, "
        "next_attempt_at, reason, sent_at, gateway_ref, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (transaction_id, account_event_id, cardholder_id, message_id or new_message_id(),
         kind, card_last4, channel, destination, language, text, status, attempts or 0,
         next_attempt_at, reason, sent_at, gateway_ref, now)).lastrowid


def due(ledger, now: int, limit: "int | None" = None) -> "list[Waiting]":
    """Waiting rows whose time has come, oldest due first."""
    rows = ledger.execute(
        "SELECT id, message_id, cardholder_id, kind, channel, destination, language, text, "
        "status, attempts FROM outbox WHERE status IN ('queued', 'held', 'failed') "
        "AND COALESCE(next_attempt_at, 0) <= ? ORDER BY COALESCE(next_attempt_at, 0), id "
        "LIMIT ?", (now, -1 if limit is None else limit))
    return [Waiting(**dict(r)) for r in rows]


def waiting_count(ledger) -> int:
    return ledger.execute("SELECT count(*) FROM outbox WHERE status IN "
                          "('queued', 'held', 'failed')").fetchone()[0]


def record_sent(ledger, message_id: str, ref: str, now: int):
    ledger.execute("UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, "
                   "gateway_ref = ?, reason = NULL, next_attempt_at = NULL "
                   "WHERE message_id = ?", (now, ref, message_id))


def record_failed(ledger, message_id: str, reason: str, retry_at: int):
    ledger.execute("UPDATE outbox SET status = 'failed', attempts = attempts + 1, reason = ?, "
                   "next_attempt_at = ? WHERE message_id = ?", (reason, retry_at, message_id))


def record_held(ledger, message_id: str, until: int):
    """Quiet hours began before the message went out: it waits for them to end (not an
    attempt, so no backoff)."""
    ledger.execute("UPDATE outbox SET status = 'held', next_attempt_at = ? "
                   "WHERE message_id = ?", (until, message_id))
