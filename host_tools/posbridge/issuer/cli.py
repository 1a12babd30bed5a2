"""`posbridge issuer ...`: the issuer simulator's admin commands (docs/issuer.md).

    posbridge issuer init [--force]           a new database with the demo data set
    posbridge issuer card add --pan ... ...   one more card, account and cardholder
    posbridge issuer ledger [--json]          cards (masked), balances, status, PIN tries,
                                              limits and each card's account postings
    posbridge issuer journal [--json]         every transaction: what was charged, what
                                              reversed
    posbridge issuer outbox [--json]          the alerts the issuer made

and, in cli_notify.py, the notification engine's: alerts, account, remind, dispatch,
policy. `--db PATH` (or POSBRIDGE_ISSUER_DB) picks the database, var/issuer.sqlite by
default; `--policy FILE.toml` (or POSBRIDGE_ISSUER_POLICY) the bank's alert policy.
No output ever holds a full PAN or a PIN.
"""
import datetime
import functools
import json
import sqlite3
from pathlib import Path

import click

from ..link.pan import mask_pan
from . import codes
from .cards import check_pan, check_phone, mask_phone, parse_expiry
from .demo_data import DEMO_BDK_ID, load_demo
from .errors import LedgerError
from .ledger import DEFAULT_PATH, Ledger
from .money import currency_code, format_amount, parse_amount
from .pins import check_pin_format, hash_pin
from .policy import Policy

_DB = "posbridge.issuer.db"
_POLICY = "posbridge.issuer.policy"


def _friendly(command):
    """Errors a person can act on, never a traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (LedgerError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            raise click.ClickException(f"issuer database: {exc}") from None
    return wrapper


def _ledger() -> Ledger:
    return Ledger.open(click.get_current_context().meta[_DB])


def _policy() -> Policy:
    """The policy of --policy, else of POSBRIDGE_ISSUER_POLICY, else the defaults."""
    path = click.get_current_context().meta.get(_POLICY)
    return Policy.load(path) if path else Policy.from_env()


@click.group()
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_PATH,
              envvar="POSBRIDGE_ISSUER_DB", show_default=True,
              help="The issuer's SQLite database (env POSBRIDGE_ISSUER_DB).")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None,
              help="The bank's alert policy, a TOML file (env POSBRIDGE_ISSUER_POLICY; "
                   "default: the shipped default_policy.toml).")
@click.pass_context
def issuer(ctx, db, policy_file):
    """Issuer simulator: ledger, cards, alerts, outbox."""
    ctx.meta[_DB] = db
    ctx.meta[_POLICY] = policy_file


@issuer.command()
@click.option("--force", is_flag=True, help="Replace an existing database.")
@_friendly
def init(force):
    """Create the database with the demo key set and test cards (docs/issuer.md)."""
    path = click.get_current_context().meta[_DB]
    ledger = Ledger.create(path, force=force)
    try:
        count = load_demo(ledger)
        cards = ledger.cards()
    finally:
        ledger.close()
    click.echo(f"issuer database {path}: key set {DEMO_BDK_ID} (X9.24-3 test BDK), "
               f"{count} demo test cards (docs/issuer.md lists them with their PIN)")
    for card in cards:
        click.echo(f"  {card.masked}  {card.status:<7} {card.expiry}  {card.holder.name}")


@issuer.group()
def card():
    """Cards on file."""


@card.command("add")
@click.option("--pan", required=True, help="12 to 19 digits with a valid Luhn digit.")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True,
              help="4 to 12 digits; prompted (hidden) when not given.")
@click.option("--expiry", required=True, help="YYMM.")
@click.option("--balance", default="0", show_default=True,
              help="Opening balance in major units, e.g. 1234.56.")
@click.option("--currency", default="CNY", show_default=True, help="ISO 4217: CNY or 156.")
@click.option("--name", default="", help="Cardholder name.")
@click.option("--phone", default=None, help="For alerts, e.g. 13812345678.")
@click.option("--subscribe/--no-subscribe", default=False, show_default=True,
              help="Subscribed to alerts.")
@click.option("--channel", type=click.Choice(codes.CHANNELS), default="sms", show_default=True)
@click.option("--alerts", "kinds", default=",".join(codes.DEFAULT_ALERT_KINDS),
              show_default=True, help="Alert kinds chosen, comma-separated.")
@click.option("--status", type=click.Choice(codes.CARD_STATUSES), default="active",
              show_default=True)
@click.option("--purchase-limit", default=None,
              help="The card's single-purchase limit in major units (61 above it).")
@click.option("--alert-threshold", default=None,
              help="No purchase alert below this amount, major units of the policy's "
                   "currency (default: the bank's; `alerts set --threshold` changes it).")
@_friendly
def card_add(pan, pin, expiry, balance, currency, name, phone, subscribe, channel, kinds,
             status, purchase_limit, alert_threshold):
    """Add a card with a new account and cardholder."""
    check_pan(pan)
    check_pin_format(pin)
    parse_expiry(expiry)
    currency = currency_code(currency)
    available = parse_amount(balance, currency)
    if purchase_limit is not None:
        purchase_limit = parse_amount(purchase_limit, currency)
        if purchase_limit <= 0:
            raise ValueError("purchase limit: more than 0 expected")
    threshold = None
    if alert_threshold is not None:
        threshold = parse_amount(alert_threshold, _policy().currency)
        if threshold < 0:
            raise ValueError("alert threshold: 0 or more expected")
    if phone is not None:
        check_phone(phone)
    kinds = tuple(k.strip() for k in kinds.split(",") if k.strip())
    for kind in kinds:
        if kind not in codes.ALERT_KINDS:
            raise ValueError(f"alert kind {kind!r}: one of {', '.join(codes.ALERT_KINDS)}")
    ledger = _ledger()
    try:
        ledger.add_card(pan=pan, pin_hash=hash_pin(pin), expiry=expiry, available=available,
                        currency=currency, name=name, phone=phone, subscribed=subscribe,
                        channel=channel, kinds=kinds, status=status,
                        purchase_limit=purchase_limit, threshold=threshold)
    finally:
        ledger.close()
    click.echo(f"added card {mask_pan(pan)}: {status}, expires {expiry}, "
               f"{format_amount(available, currency)}")


def _alerts(holder) -> str:
    if not holder.subscribed:
        return "not subscribed"
    where = mask_phone(holder.phone) if holder.phone else "no phone"
    return f"{holder.channel} {where}: {','.join(sorted(holder.kinds)) or 'no kinds'}"


@issuer.command("ledger")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_friendly
def ledger_command(as_json):
    """Cards (masked), balances, status, PIN tries left, limits, postings."""
    ledger = _ledger()
    try:
        cards = ledger.cards()
        entries = ledger.ledger_entries()
    finally:
        ledger.close()
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


@issuer.command("journal")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_friendly
def journal_command(as_json):
    """Every transaction: identity, card (masked), response, what was charged and what
    reversed."""
    ledger = _ledger()
    try:
        rows = ledger.journal()
    finally:
        ledger.close()
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
        elif r["kind"] == "reversal":
            line += (f"  of {r['terminal_id']}/{r['original_trace']}: "
                     f"{codes.REVERSAL_OUTCOMES.get(r['reversal_outcome'], '-')}")
        click.echo(line.rstrip())


@issuer.command("outbox")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_friendly
def outbox_command(as_json):
    """Alerts made for cardholders: card last 4, channel, masked destination, text."""
    ledger = _ledger()
    try:
        rows = ledger.outbox()
    finally:
        ledger.close()
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


def _clock(unix_time) -> str:
    return datetime.datetime.fromtimestamp(unix_time).strftime("%Y-%m-%d %H:%M:%S")


# the notification engine's commands, in their own module (after `issuer` exists)
from . import cli_notify  # noqa: E402,F401

