"""`posbridge issuer account freeze|unfreeze|set-limit|statement --pan PAN ...` and
`posbridge issuer remind --due DATE`: account changes and repayment reminders
(account_events.py), each printed with the status of its alert."""
import datetime

import click

from .. import account_events, codes
from ..dispatcher import Dispatcher
from ..money import format_amount, parse_amount
from . import common
from .common import PAN_OPTION


def _status(decision) -> str:
    """A decision as a person reads it: 'sent (sms 138****5678)', 'not subscribed (3)'."""
    name = codes.NOTIFY_STATUSES[decision.status]
    if decision.alerts:
        extra = f", until {decision.detail}" if decision.status == codes.QUIET_HOURS else ""
        return f"{name} ({decision.channel} {decision.destination}{extra})"
    if decision.detail:
        return f"{name} {decision.detail} ({decision.status})"
    return f"{name} ({decision.status})"


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date {text!r}: YYYY-MM-DD expected") from None


def _run(action, *args, **kwargs) -> "list":
    """`action(EventContext, *args, **kwargs)` with a dispatcher for alerts sent at once."""
    policy = common.policy()
    with common.open_ledger() as ledger:
        dispatcher = Dispatcher(ledger, policy)
        try:
            return action(account_events.EventContext(ledger, policy, dispatcher, common.now()),
                          *args, **kwargs)
        finally:
            dispatcher.close()


def _print(result):
    click.echo(f"card {result.card}: {result.summary}; alert: {_status(result.decision)}")


@click.group()
def account():
    """Account changes; the cardholder is alerted (kind account_change)."""


@account.command("freeze")
@PAN_OPTION
@click.option("--stop-payment", is_flag=True, help="A stop-payment (card reported lost) "
              "rather than a freeze.")
def account_freeze(pan, stop_payment):
    """Freeze a card: the terminal declines it (62) with a security alert."""
    _print(_run(account_events.freeze, pan, stop_payment=stop_payment))


@account.command("unfreeze")
@PAN_OPTION
def account_unfreeze(pan):
    """Unfreeze a frozen or stopped card."""
    _print(_run(account_events.unfreeze, pan))


@account.command("set-limit")
@PAN_OPTION
@click.option("--limit", required=True, help="New credit limit in major units, e.g. 20000.00.")
def account_set_limit(pan, limit):
    """Raise or lower the credit limit."""
    with common.open_ledger() as ledger:
        currency = ledger.card_on_file(pan).currency
    _print(_run(account_events.set_limit, pan, parse_amount(limit, currency)))


@account.command("statement")
@PAN_OPTION
@click.option("--amount", required=True, help="Statement balance, e.g. 2345.00.")
@click.option("--minimum", required=True, help="Minimum payment, e.g. 234.50.")
@click.option("--due", required=True, help="Payment due date, YYYY-MM-DD.")
def account_statement(pan, amount, minimum, due):
    """Set the statement a repayment reminder is about (no alert)."""
    due_date = _date(due)
    with common.open_ledger() as ledger:
        card = ledger.card_on_file(pan)
        statement = parse_amount(amount, card.currency)
        minimum = parse_amount(minimum, card.currency)
        account_events.set_statement(ledger, pan, statement_amount=statement,
                                     minimum_payment=minimum, due_date=due_date)
    click.echo(f"card {card.masked}: statement {format_amount(statement, card.currency)}, "
               f"minimum {format_amount(minimum, card.currency)}, due {due_date}")


@click.command("remind")
@click.option("--due", required=True, help="Remind the accounts whose payment is due on "
              "this date, YYYY-MM-DD.")
def remind(due):
    """Queue repayment reminders for the payments due on a date (once per account)."""
    due_date = _date(due)
    results = _run(account_events.remind, due_date)
    for r in results:
        _print(r)
    click.echo(f"{len(results)} repayment reminder(s) for {due_date}")
