"""The outbox: the alerts made for cardholders, as a queue. This module is the only
writer of the `outbox` table: add() puts an alert in, claim() takes it for one send,
the record_* functions say what became of that send; claim_due() takes the next due row
for the dispatcher, due() and waiting_count() list what waits, purchase_alert() the issuer's when a purchase is reversed, and
Ledger.outbox lists every row for a person or a test.

A row waits while its status is queued (for the dispatcher), held (quiet hours) or
failed (the gateway refused it; tried again later); it is due once `next_attempt_at`
has come. A row is never deleted: a failed one stays with its reason until a later
attempt sends it.

Sending is claimed, so that two senders (the issuer after its COMMIT, dispatchers in
this process or others) never hand one message to the gateway twice:

    row = ledger.atomically(lambda: outbox.claim_due(ledger, now))   # or None
    # send, then record_sent / record_failed / record_held

claim_due() takes the first due row and moves it to `sending` in one transaction.
SQLite runs one writer at a time (BEGIN IMMEDIATE), so two dispatchers' claims come one
after the other and the second finds the row taken. On PostgreSQL the row is read FOR
UPDATE SKIP LOCKED: a dispatcher passes over a row another is claiming and takes the
next, so several share the queue without waiting on each other or taking one row twice.
The claim is a lease: a `sending` row's next_attempt_at is when the claim lapses (CLAIM_S later);
a sender that died between the claim and the record leaves it due again then, so a
message is never lost, and is sent twice only if a send outlived its lease or the
sender died after the gateway took it and before it was recorded. The issuer writes
the row of an alert it sends at once already claimed (add(status="sending")), in the
transaction that made it: no dispatcher can take it before the issuer's own send.
"""
import secrets
import time
from dataclasses import dataclass

from .codes import OUTBOX_STATUSES
from .errors import LedgerError

WAITING = ("queued", "held", "failed", "sending")
# how long a claim holds: far longer than any gateway's send timeout
CLAIM_S = 300


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
    next_attempt_at: "int | None" = None


@dataclass(frozen=True)
class PurchaseAlert:
    """The alert of the purchase a reversal cancels, as notify.decide needs it."""
    kind: str                    # purchase or large_amount
    channel: str
    language: "str | None"
    waiting_until: "int | None"  # not sent yet: when it is due (None once sent)


def new_message_id() -> str:
    """An alert's id: 16 hex digits, random (it says nothing about the card)."""
    return secrets.token_hex(8)


def add(ledger, *, transaction_id, cardholder_id, kind: str, card_last4: str, channel: str,
        destination: str, text: str, status: str, now=None, message_id=None, language=None,
        next_attempt_at=None, attempts=None, reason=None, sent_at=None, gateway_ref=None,
        account_event_id=None) -> int:
    """One alert; returns its row id. A row that waits (queued, held, failed) is due at
    `next_attempt_at` (default: now); a "sending" row is claimed by the caller until
    CLAIM_S from now; a "sent" row counts one attempt."""
    if status not in OUTBOX_STATUSES:
        raise LedgerError(f"outbox status {status!r}: one of {', '.join(OUTBOX_STATUSES)}")
    now = int(time.time() if now is None else now)
    if status == "sent":
        attempts = 1 if attempts is None else attempts
        sent_at, next_attempt_at = now if sent_at is None else sent_at, None
    elif status == "sending":
        next_attempt_at = now + CLAIM_S
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


_WAITING_COLUMNS = ("id, message_id, cardholder_id, kind, channel, destination, language, "
                    "text, status, attempts, next_attempt_at")
_DUE = ("FROM outbox WHERE status IN ('queued', 'held', 'failed', 'sending') "
        "AND COALESCE(next_attempt_at, 0) <= ? ORDER BY COALESCE(next_attempt_at, 0), id")
# how claim_due reads its row: on SQLite the transaction's write lock already keeps
# every other writer out; PostgreSQL locks the row and passes over locked ones
_ROW_LOCK = {"sqlite": "", "postgresql": " FOR UPDATE SKIP LOCKED"}


def due(ledger, now: int, limit: "int | None" = None) -> "list[Waiting]":
    """Waiting rows whose time has come (a `sending` row once its claim has lapsed),
    oldest due first."""
    sql = f"SELECT {_WAITING_COLUMNS} {_DUE}"
    params = (now,)
    if limit is not None:
        sql, params = sql + " LIMIT ?", (now, limit)
    return [Waiting(**dict(r)) for r in ledger.execute(sql, params)]


def claim_due(ledger, now: int) -> "Waiting | None":
    """The first due row no other sender holds, taken for one send until CLAIM_S from
    now (as it was before the claim: its status and attempts); None when nothing is
    due. Inside a transaction: the read and the claim are one."""
    row = ledger.execute(f"SELECT {_WAITING_COLUMNS} {_DUE} LIMIT 1"
                         f"{_ROW_LOCK[ledger.dialect]}", (now,)).fetchone()
    if row is None:
        return None
    ledger.execute("UPDATE outbox SET status = 'sending', next_attempt_at = ? WHERE id = ?",
                   (now + CLAIM_S, row["id"]))
    return Waiting(**dict(row))


def waiting_count(ledger) -> int:
    return ledger.execute("SELECT count(*) FROM outbox WHERE status IN "
                          "('queued', 'held', 'failed', 'sending')").fetchone()[0]


def purchase_alert(ledger, transaction_id: int) -> "PurchaseAlert | None":
    """The alert made for the purchase journaled as `transaction_id`, None if it made
    none."""
    row = ledger.execute(
        "SELECT kind, channel, language, status, next_attempt_at FROM outbox "
        "WHERE transaction_id = ? AND kind IN ('purchase', 'large_amount') "
        "ORDER BY id LIMIT 1", (transaction_id,)).fetchone()
    if row is None:
        return None
    return PurchaseAlert(row["kind"], row["channel"], row["language"],
                         None if row["status"] == "sent" else row["next_attempt_at"])


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
