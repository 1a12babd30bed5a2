"""`posbridge issuer ledger|journal|outbox [--json]`: what the database holds, for a
person (cards masked first 6 / last 4, phones masked) or, with --json, for a test."""
import datetime
import json

import click

from .. import codes
from ..money import format_amount
from ..preferences import mask_phone
from . import common


def _alerts(holder) -> str:
    if not holder.subscribed:
        return "not subscribed"
    where = mask_phone(holder.phone) if holder.phone else "no phone"
    return f"{holder.channel} {where}: {','.join(sorted(holder.kinds)) or 'no kinds'}"


@click.command("ledger")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ledger_command(as_json):
    """Cards (masked), balances, status, PIN tries left, limits, postings."""
    with common.open_ledger() as ledger:
        cards = ledger.cards()
        entries = ledger.ledger_entries()
    postings = {}
    for e in entries:
        postings.setdefault(e["account_id"], []).append({
            "transaction": e["transaction_id"], "kind": e["kind"],
            "terminal_id": e["terminal_id"], "trace": e["trace_number"],
            "amount": e["amount"], "available_after": e["available_after"],
            "ledger_after": e["ledger_after"]})
    if as_json:
        click.echo(json.dumps([{
            "card": c.masked, "status": c.status, "expiry": c.expiry,
            "pin_tries_left": c.pin_tries_left, "available": c.available,
            "ledger": c.ledger, "currency": c.currency,
            "cardholder": c.holder.name,
            "phone": mask_phone(c.holder.phone) if c.holder.phone else None,
            "subscribed": c.holder.subscribed, "channel": c.holder.channel,
            "alert_kinds": sorted(c.holder.kinds),
            "alert_threshold": c.holder.threshold,
            "purchase_limit": c.purchase_limit,
            "account_purchase_limit": c.account_purchase_limit,
            "credit_limit": c.credit_limit,
            "postings": postings.get(c.account_id, []),
        } for c in cards], indent=2, ensure_ascii=False))
        return
    if not cards:
        click.echo("no cards on file")
        return
    click.echo(f"{'card':<19} {'status':<7} {'exp':<4} {'PIN':>3} {'available':>16} "
               f"{'ledger':>16}  {'cardholder':<12} alerts")
    for c in cards:
        click.echo(f"{c.masked:<19} {c.status:<7} {c.expiry:<4} {c.pin_tries_left:>3} "
                   f"{format_amount(c.available, c.currency):>16} "
                   f"{format_amount(c.ledger, c.currency):>16}  {c.holder.name:<12} "
                   f"{_alerts(c.holder)}")
        for e in postings.get(c.account_id, []):
            click.echo(f"    #{e['transaction']:<5} {e['kind']:<9} {e['terminal_id']}/"
                       f"{e['trace']:<6} {format_amount(e['amount'], c.currency):>16} "
                       f"-> {format_amount(e['available_after'], c.currency)}")


def _charged(row) -> int:
    """What a purchase row still costs the cardholder: its amount if it was approved
    and no reversal closed it, else 0."""
    if (row["kind"] == "purchase" and row["response_code"] == codes.APPROVED
            and row["reversed_by"] is None):
        return row["amount"]
    return 0


@click.command("journal")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def journal_command(as_json):
    """Every transaction: identity, card (masked), response, what was charged and what
    reversed."""
    with common.open_ledger() as ledger:
        rows = ledger.journal()
    for row in rows:
        row["charged"] = _charged(row)
        # credited back by a reversal (reversed_by alone: a reversal closed it, which for
        # a declined purchase or one that came after its reversal credits nothing)
        row["reversed"] = (row["kind"] == "purchase" and row["response_code"] == codes.APPROVED
                           and row["reversed_by"] is not None)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("journal is empty")
        return
    for r in rows:
        when = datetime.datetime.fromtimestamp(r["created_at"]).strftime("%Y-%m-%d %H:%M:%S")
        money = (format_amount(r["amount"], r["currency"])
                 if r["amount"] is not None and r["currency"] else "")
        line = (f"#{r['id']:<5} {when}  {r['terminal_id']}/{r['trace_number']:<6} "
                f"{r['kind']:<15} {r['response_code']} {r['card'] or '-':<19} {money}")
        if r["kind"] == "purchase":
            line += f"  {r['merchant_name']}"
            if r["charged"]:
                line += "  charged"
            elif r["reversed"]:
                line += f"  reversed by #{r['reversed_by']}"
            elif r["reversed_by"] is not None:
                line += f"  closed by reversal #{r['reversed_by']}"
        elif r["kind"] == "reversal" and r["original_trace"] is not None:
            # a reversal answered 94 names no original: it acknowledged nothing
            line += (f"  of {r['terminal_id']}/{r['original_trace']}: "
                     f"{codes.REVERSAL_OUTCOMES.get(r['reversal_outcome'], '-')}")
        click.echo(line.rstrip())


@click.command("outbox")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def outbox_command(as_json):
    """Alerts made for cardholders: card last 4, channel, masked destination, text."""
    with common.open_ledger() as ledger:
        rows = ledger.outbox()
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("outbox is empty")
        return
    for r in rows:
        click.echo(f"#{r['id']:<4} {_clock(r['created_at'])}  *{r['card_last4']}  "
                   f"{r['channel']:<3} {r['destination']:<14} {r['status']:<6} {r['kind']}  "
                   f"[{r['language'] or '?'}] id {r['message_id']}")
        click.echo(f"      {r['text']}")
        if r["status"] == "failed":
            click.echo(f"      failed {r['attempts']}x: {r['reason']}; next try "
                       f"{_clock(r['next_attempt_at'])}")
        elif r["status"] == "held":
            click.echo(f"      held for quiet hours until {_clock(r['next_attempt_at'])}")
        elif r["status"] == "sending":
            click.echo(f"      claimed by a sender; due again if not sent by "
                       f"{_clock(r['next_attempt_at'])}")


def _clock(unix_time) -> str:
    return datetime.datetime.fromtimestamp(unix_time).strftime("%Y-%m-%d %H:%M:%S")
