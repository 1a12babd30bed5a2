"""Changes to a card's account that the cardholder is told about (kind account_change),
and repayment reminders (kind repayment_reminder).

    freeze(ctx, pan)                  active -> frozen: the terminal gets 62 and the
    freeze(ctx, pan, stop_payment=True)        cardholder a security alert on every use
    unfreeze(ctx, pan)                frozen or stopped -> active
    set_limit(ctx, pan, limit)        the credit limit raised or lowered
    set_statement(ledger, pan, ...)   statement amount, minimum payment, due date (no alert)
    remind(ctx, due)                  a reminder for every account whose payment is due
                                      on `due`, once per account and due date

Each change, its row in `account_events` and its alert's outbox row (notify.decide,
alerts.make and alerts.store) are one SQLite transaction; an alert due at once is sent
after its COMMIT (alerts.send), so a change that rolls back alerts nothing. This module is the only writer of the
`account_events` table; the change itself is written by its table's owner (the card's
status by cards.py, the account's terms by the ledger). `ctx` is an EventContext:
ledger, policy, dispatcher and the time.
"""
import datetime
from dataclasses import dataclass

from . import alerts, cards, notify, templates
from .cards import check_pan
from .errors import LedgerError
from .money import format_amount


@dataclass(frozen=True)
class EventContext:
    ledger: object
    policy: object
    dispatcher: object
    now: int


@dataclass(frozen=True)
class EventResult:
    card: str                    # masked
    event: str                   # card_frozen, stop_payment, card_unfrozen, limit_raised,
                                 # limit_lowered, repayment_reminder
    summary: str                 # for a person: what changed
    decision: object             # notify.Decision of the alert


def freeze(ctx: EventContext, pan: str, *, stop_payment: bool = False) -> EventResult:
    card = _card(ctx.ledger, pan)
    if card.status == "blocked" or (card.status == "frozen" and not stop_payment):
        raise LedgerError(f"card {card.masked} is already {_status_words(card.status)}")
    new_status = "blocked" if stop_payment else "frozen"
    event = "stop_payment" if stop_payment else "card_frozen"
    return _status_change(ctx, card, new_status, event)


def unfreeze(ctx: EventContext, pan: str) -> EventResult:
    card = _card(ctx.ledger, pan)
    if card.status == "active":
        raise LedgerError(f"card {card.masked} is not frozen")
    return _status_change(ctx, card, "active", "card_unfrozen")


def set_limit(ctx: EventContext, pan: str, limit: int) -> EventResult:
    """`limit` in minor units of the account's currency."""
    if limit < 0:
        raise ValueError("credit limit: must not be negative")
    card = _card(ctx.ledger, pan)
    old = _account(ctx.ledger, card.account_id)["credit_limit"]
    if limit == old:
        raise LedgerError(f"card {card.masked}: the credit limit is already "
                          f"{format_amount(old, card.currency)}")
    event = "limit_raised" if limit > old else "limit_lowered"
    with ctx.ledger.transaction():
        ctx.ledger.set_credit_limit(card.account_id, limit)
        event_id = _record(ctx, card, event, old, limit)
        decision, alert = _alert(ctx, card, event_id, lambda lang, kind:
                                 templates.account_change_text(
                                     lang, change=event, last4=card.last4, when=_when(ctx),
                                     currency=card.currency, old_limit=old,
                                     new_limit=limit, policy=ctx.policy))
    decision = _send(ctx, decision, alert)
    summary = (f"credit limit {format_amount(old, card.currency)} -> "
               f"{format_amount(limit, card.currency)}")
    return EventResult(card.masked, event, summary, decision)


def set_statement(ledger, pan: str, *, statement_amount: int, minimum_payment: int,
                  due_date: datetime.date):
    if statement_amount < 0 or minimum_payment < 0:
        raise ValueError("statement: amounts must not be negative")
    if minimum_payment > statement_amount:
        raise ValueError("statement: the minimum payment is more than the statement amount")
    card = _card(ledger, pan)
    with ledger.transaction():
        ledger.set_statement(card.account_id, statement_amount=statement_amount,
                             minimum_payment=minimum_payment, due_date=due_date.isoformat())


def remind(ctx: EventContext, due: datetime.date) -> "list[EventResult]":
    """Reminders for the accounts with a statement due on `due`; an account already
    reminded for that date is left out (running it twice sends nothing twice)."""
    results = []
    accounts = ctx.ledger.execute(
        "SELECT a.id FROM accounts a WHERE a.due_date = ? AND a.statement_amount > 0 "
        "AND NOT EXISTS (SELECT 1 FROM account_events e WHERE e.account_id = a.id "
        "AND e.event = 'repayment_reminder' AND e.new_value = ?) ORDER BY a.id",
        (due.isoformat(), due.isoformat())).fetchall()
    for row in accounts:
        card_row = ctx.ledger.execute("SELECT id FROM cards WHERE account_id = ? "
                                      "ORDER BY id LIMIT 1", (row["id"],)).fetchone()
        if card_row is None:
            continue
        card = ctx.ledger.card_by_id(card_row["id"])
        account = _account(ctx.ledger, card.account_id)
        with ctx.ledger.transaction():
            event_id = _record(ctx, card, "repayment_reminder", None, due.isoformat())
            decision = notify.decide(notify.REPAYMENT_REMINDER, ctx.policy, card.holder,
                                     now=ctx.now)
            alert = _store(ctx, decision, card, event_id,
                           lambda lang, kind: templates.repayment_reminder_text(
                               lang, last4=card.last4,
                               statement_amount=account["statement_amount"],
                               minimum_payment=account["minimum_payment"] or 0,
                               currency=card.currency, due_date=due.isoformat(),
                               policy=ctx.policy))
        decision = _send(ctx, decision, alert)
        summary = (f"statement {format_amount(account['statement_amount'], card.currency)}, "
                   f"minimum {format_amount(account['minimum_payment'] or 0, card.currency)}, "
                   f"due {due.isoformat()}")
        results.append(EventResult(card.masked, "repayment_reminder", summary, decision))
    return results


# ---- helpers -----------------------------------------------------------------------------

def _card(ledger, pan: str):
    return ledger.card_on_file(check_pan(pan))


def _account(ledger, account_id: int):
    return ledger.execute("SELECT credit_limit, statement_amount, minimum_payment, due_date "
                          "FROM accounts WHERE id = ?", (account_id,)).fetchone()


def _status_change(ctx, card, new_status, event) -> EventResult:
    with ctx.ledger.transaction():
        cards.set_status(ctx.ledger, card.id, new_status)
        event_id = _record(ctx, card, event, card.status, new_status)
        decision, alert = _alert(ctx, card, event_id, lambda lang, kind:
                                 templates.account_change_text(
                                     lang, change=event, last4=card.last4, when=_when(ctx),
                                     policy=ctx.policy))
    decision = _send(ctx, decision, alert)
    summary = f"{_status_words(card.status)} -> {_status_words(new_status)}"
    return EventResult(card.masked, event, summary, decision)


def _alert(ctx, card, event_id, text_for):
    """(decision, alert) of an account change, its outbox row written (in the caller's
    transaction)."""
    decision = notify.decide(notify.ACCOUNT_CHANGE, ctx.policy, card.holder, now=ctx.now)
    return decision, _store(ctx, decision, card, event_id, text_for)


def _store(ctx, decision, card, event_id, text_for):
    alert = alerts.make(decision, card.holder, card.last4, text_for)
    if alert is not None:
        alerts.store(ctx.ledger, alert, ctx.policy, ctx.now, account_event_id=event_id)
    return alert


def _send(ctx, decision, alert):
    """After the COMMIT: the alert sent if it is due at once; the final decision."""
    if alert is None:
        return decision
    return alerts.send(ctx.ledger, alert, ctx.dispatcher, ctx.policy, ctx.now).decision


def _record(ctx, card, event, old, new) -> int:
    return ctx.ledger.execute(
        "INSERT INTO account_events (account_id, card_id, event, old_value, new_value, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (card.account_id, card.id, event, None if old is None else str(old),
         None if new is None else str(new), ctx.now)).lastrowid


def _when(ctx) -> str:
    return notify.local_time(ctx.now, ctx.policy.utc_offset_min)


def _status_words(status: str) -> str:
    return {"blocked": "stopped (stop-payment)"}.get(status, status)
