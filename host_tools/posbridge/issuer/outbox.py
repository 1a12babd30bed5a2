"""The outbox as a queue: which messages are due, and what became of each send.

A row waits while its status is queued (for the dispatcher), held (quiet hours) or
failed (the gateway refused it; tried again later); it is due once `next_attempt_at`
has come. A row is never deleted: a failed one stays with its reason until a later
attempt sends it. Ledger.add_outbox writes rows; Ledger.outbox lists them.
"""
from dataclasses import dataclass

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
