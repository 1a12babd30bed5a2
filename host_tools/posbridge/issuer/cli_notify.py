"""`posbridge issuer ...` commands of the notification engine (docs/issuer.md, CLI):

    alerts show|subscribe|unsubscribe|set --pan PAN ...   a cardholder's preferences
    account freeze|unfreeze|set-limit|statement --pan PAN  account changes, alerted
    remind --due DATE                                      repayment reminders
    dispatch [--gateway builtin|smpp ...]                  send what the outbox holds, once
    policy show|check                                      the bank's alert policy

A card is named by its full PAN (as in `card add`); every output masks it. Errors are
one line and a non-zero exit, never a traceback.
"""
import datetime
import json
import time

import click

from . import account_events, codes, notify, outbox, preferences
from .cards import check_pan, mask_phone
from .cli import _friendly, _ledger, _policy, issuer
from .dispatcher import Dispatcher
from .gateways import BuiltinGateway
from .money import format_amount, parse_amount
from .policy import Policy
from .smpp_gateway import DEFAULT_PORT, SmppGateway

PAN_OPTION = click.option("--pan", required=True, callback=lambda ctx, param, value:
                          _checked_pan(value), help="The card's number (12-19 digits).")


def _checked_pan(pan):
    try:
        return check_pan(pan)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def now() -> int:
    """The time the commands act at (tests replace it)."""
    return int(time.time())


def _status(decision) -> str:
    """A decision as a person reads it: 'sent (sms 138****5678)', 'not subscribed (3)'."""
    name = codes.NOTIFY_STATUSES[decision.status]
    if decision.alerts:
        extra = f", until {decision.detail}" if decision.status == codes.QUIET_HOURS else ""
        return f"{name} ({decision.channel} {decision.destination}{extra})"
    if decision.detail:
        return f"{name} {decision.detail} ({decision.status})"
    return f"{name} ({decision.status})"


# ---- alerts --------------------------------------------------------------------------

@issuer.group()
def alerts():
    """A cardholder's alert preferences."""


def _holder_json(card, policy) -> dict:
    h = card.holder
    return {
        "card": card.masked, "cardholder": h.name, "subscribed": h.subscribed,
        "phone": mask_phone(h.phone) if h.phone else None,
        "channel": h.channel, "language": h.language, "effective_language":
            notify.language_of(policy, h.language),
        "threshold": h.threshold, "effective_threshold": notify.purchase_threshold(policy, h),
        "large_amount_limit": h.large_amount_limit,
        "effective_large_amount_limit": notify.large_amount_limit(policy, h),
        "currency": policy.currency,
        "quiet_hours": str(h.quiet_hours) if h.quiet_hours else None,
        "kinds": {kind: {"chosen": kind in h.kinds, "bank_alerts": policy.alerts(kind),
                         "channel": notify.channel_for(h, kind)}
                  for kind in codes.ALERT_KINDS},
        "security_alerts": {kind: {"channel": notify.channel_for(h, kind)}
                            for kind in codes.SECURITY_KINDS},
    }


def _show(card, policy):
    data = _holder_json(card, policy)

    def own(value, effective, text):
        return text(effective) + ("" if value is not None else " (bank default)")

    money = policy.amount_text
    click.echo(f"card {data['card']}  {data['cardholder']}")
    rows = [
        ("subscribed", "yes" if data["subscribed"] else "no"),
        ("phone", data["phone"] or "none on file"),
        ("channel", data["channel"]),
        ("language", own(data["language"], data["effective_language"], str)),
        ("threshold", own(data["threshold"], data["effective_threshold"], money)),
        ("large amount", own(data["large_amount_limit"],
                             data["effective_large_amount_limit"], money)),
        ("quiet hours", data["quiet_hours"] or "none"),
    ]
    for name, value in rows:
        click.echo(f"  {name:<13} {value}")
    click.echo(f"  {'kind':<20} {'chosen':<7} {'bank':<7} channel")
    for kind, k in data["kinds"].items():
        click.echo(f"  {kind:<20} {'yes' if k['chosen'] else 'no':<7} "
                   f"{'yes' if k['bank_alerts'] else 'no':<7} {k['channel']}")
    for kind, k in data["security_alerts"].items():
        click.echo(f"  {kind:<20} {'always':<7} {'always':<7} {k['channel']}")


@alerts.command("show")
@PAN_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_friendly
def alerts_show(pan, as_json):
    """A cardholder's preferences, with the bank's defaults where they have none."""
    policy = _policy()
    ledger = _ledger()
    try:
        card = ledger.card_on_file(pan)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(_holder_json(card, policy), indent=2, ensure_ascii=False))
    else:
        _show(card, policy)


def _change(pan, **changes):
    """Apply `changes` to the cardholder of `pan` and print the result."""
    policy = _policy()
    ledger = _ledger()
    try:
        card = ledger.card_on_file(pan)
        preferences.update(ledger, card.holder.id, **changes)
        card = ledger.card_on_file(pan)
    finally:
        ledger.close()
    _show(card, policy)
    if card.holder.subscribed and not card.holder.phone:
        click.echo("note: no phone on file, so no alert can be sent (status 7)")


@alerts.command("subscribe")
@PAN_OPTION
@click.option("--phone", default=None, help="Phone number for alerts.")
@click.option("--kinds", default=None, help="Kinds chosen: comma-separated, all or none.")
@click.option("--channel", type=click.Choice(codes.CHANNELS), default=None)
@_friendly
def alerts_subscribe(pan, phone, kinds, channel):
    """Subscribe the card's holder to alerts."""
    changes = {"subscribed": True}
    if phone is not None:
        changes["phone"] = preferences.parse_phone(phone)
    if kinds is not None:
        changes["kinds"] = preferences.parse_kinds(kinds)
    if channel is not None:
        changes["channel"] = channel
    _change(pan, **changes)


@alerts.command("unsubscribe")
@PAN_OPTION
@_friendly
def alerts_unsubscribe(pan):
    """Cancel the card holder's alerts (security alerts still go out)."""
    _change(pan, subscribed=False)


@alerts.command("set")
@PAN_OPTION
@click.option("--kinds", default=None, help="Kinds chosen, replacing the list: "
              "comma-separated, all or none.")
@click.option("--add", "add_kinds", multiple=True, help="Choose one more kind.")
@click.option("--remove", "remove_kinds", multiple=True, help="Stop one kind.")
@click.option("--threshold", default=None, help="No purchase alert below it, e.g. 100.00; "
              "default: the bank's.")
@click.option("--large-limit", default=None, help="Own large-amount limit, e.g. 5000.00; "
              "default: the bank's.")
@click.option("--channel", default=None, help="Default channel: sms or app.")
@click.option("--channel-for", "channel_for", multiple=True,
              help="Channel of one kind: KIND=sms|app|default, e.g. purchase=app.")
@click.option("--phone", default=None, help="Phone number, or none.")
@click.option("--quiet", default=None, help="Quiet hours HH:MM-HH:MM, or none.")
@click.option("--language", default=None, help="en, zh or default.")
@_friendly
def alerts_set(pan, kinds, add_kinds, remove_kinds, threshold, large_limit, channel,
               channel_for, phone, quiet, language):
    """Change a cardholder's preferences."""
    policy = _policy()
    changes = {}
    if kinds is not None:
        changes["kinds"] = preferences.parse_kinds(kinds)
    if threshold is not None:
        changes["threshold"] = preferences.parse_optional_amount(threshold, policy.currency,
                                                                 "threshold")
    if large_limit is not None:
        changes["large_amount_limit"] = preferences.parse_optional_amount(
            large_limit, policy.currency, "large-amount limit")
    if channel is not None:
        if channel not in codes.CHANNELS:
            raise ValueError(f"channel {channel!r}: one of {', '.join(codes.CHANNELS)}")
        changes["channel"] = channel
    if channel_for:
        changes["channels"] = preferences.parse_channels(",".join(channel_for))
    if phone is not None:
        changes["phone"] = preferences.parse_phone(phone)
    if quiet is not None:
        changes["quiet_hours"] = preferences.parse_quiet_hours(quiet)
    if language is not None:
        changes["language"] = preferences.parse_language(language)
    if add_kinds or remove_kinds:
        added = preferences.parse_kinds(",".join(add_kinds)) if add_kinds else ()
        removed = preferences.parse_kinds(",".join(remove_kinds)) if remove_kinds else ()
        ledger = _ledger()
        try:
            current = changes.get("kinds", ledger.card_on_file(pan).holder.kinds)
        finally:
            ledger.close()
        changes["kinds"] = tuple(k for k in codes.ALERT_KINDS
                                 if (k in current or k in added) and k not in removed)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    _change(pan, **changes)


# ---- account events ---------------------------------------------------------------------

@issuer.group()
def account():
    """Account changes; the cardholder is alerted (kind account_change)."""


def _event(action, *args, **kwargs):
    policy = _policy()
    ledger = _ledger()
    dispatcher = Dispatcher(ledger, policy)
    try:
        ctx = account_events.EventContext(ledger, policy, dispatcher, now())
        result = action(ctx, *args, **kwargs)
    finally:
        dispatcher.close()
        ledger.close()
    click.echo(f"card {result.card}: {result.summary}; alert: {_status(result.decision)}")


@account.command("freeze")
@PAN_OPTION
@click.option("--stop-payment", is_flag=True, help="A stop-payment (card reported lost) "
              "rather than a freeze.")
@_friendly
def account_freeze(pan, stop_payment):
    """Freeze a card: the terminal declines it (62) with a security alert."""
    _event(account_events.freeze, pan, stop_payment=stop_payment)


@account.command("unfreeze")
@PAN_OPTION
@_friendly
def account_unfreeze(pan):
    """Unfreeze a frozen or stopped card."""
    _event(account_events.unfreeze, pan)


@account.command("set-limit")
@PAN_OPTION
@click.option("--limit", required=True, help="New credit limit in major units, e.g. 20000.00.")
@_friendly
def account_set_limit(pan, limit):
    """Raise or lower the credit limit."""
    ledger = _ledger()
    try:
        currency = ledger.card_on_file(pan).currency
    finally:
        ledger.close()
    _event(account_events.set_limit, pan, parse_amount(limit, currency))


@account.command("statement")
@PAN_OPTION
@click.option("--amount", required=True, help="Statement balance, e.g. 2345.00.")
@click.option("--minimum", required=True, help="Minimum payment, e.g. 234.50.")
@click.option("--due", required=True, help="Payment due date, YYYY-MM-DD.")
@_friendly
def account_statement(pan, amount, minimum, due):
    """Set the statement a repayment reminder is about (no alert)."""
    due_date = _date(due)
    ledger = _ledger()
    try:
        card = ledger.card_on_file(pan)
        statement = parse_amount(amount, card.currency)
        minimum = parse_amount(minimum, card.currency)
        account_events.set_statement(ledger, pan, statement_amount=statement,
                                     minimum_payment=minimum, due_date=due_date)
    finally:
        ledger.close()
    click.echo(f"card {card.masked}: statement {format_amount(statement, card.currency)}, "
               f"minimum {format_amount(minimum, card.currency)}, due {due_date}")


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date {text!r}: YYYY-MM-DD expected") from None


@issuer.command("remind")
@click.option("--due", required=True, help="Remind the accounts whose payment is due on "
              "this date, YYYY-MM-DD.")
@_friendly
def remind(due):
    """Queue repayment reminders for the payments due on a date (once per account)."""
    due_date = _date(due)
    policy = _policy()
    ledger = _ledger()
    dispatcher = Dispatcher(ledger, policy)
    try:
        results = account_events.remind(
            account_events.EventContext(ledger, policy, dispatcher, now()), due_date)
    finally:
        dispatcher.close()
        ledger.close()
    for r in results:
        click.echo(f"card {r.card}: {r.summary}; alert: {_status(r.decision)}")
    click.echo(f"{len(results)} repayment reminder(s) for {due_date}")


# ---- dispatcher -----------------------------------------------------------------------

@issuer.command("dispatch")
@click.option("--gateway", type=click.Choice(["builtin", "smpp"]), default="builtin",
              show_default=True, help="builtin: the outbox is the message; smpp: SMS to "
              "an SMSC (app pushes stay built-in).")
@click.option("--smpp-host", default="127.0.0.1", show_default=True, envvar="POSBRIDGE_SMPP_HOST")
@click.option("--smpp-port", type=click.IntRange(1, 65535), default=DEFAULT_PORT,
              show_default=True, envvar="POSBRIDGE_SMPP_PORT")
@click.option("--smpp-system-id", default="posbridge", show_default=True,
              envvar="POSBRIDGE_SMPP_SYSTEM_ID")
@click.option("--smpp-password", default="", envvar="POSBRIDGE_SMPP_PASSWORD",
              help="Bind password (env POSBRIDGE_SMPP_PASSWORD).")
@click.option("--smpp-source", default="95500", show_default=True,
              help="Source address of the SMS.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Send at most this many messages.")
@_friendly
def dispatch(gateway, smpp_host, smpp_port, smpp_system_id, smpp_password, smpp_source,
             limit):
    """Send the queued, held and failed messages that are due, once."""
    policy = _policy()
    builtin = BuiltinGateway()
    gateways = {"sms": builtin, "app": builtin}
    if gateway == "smpp":
        gateways["sms"] = SmppGateway(smpp_host, smpp_port, system_id=smpp_system_id,
                                      password=smpp_password, source_addr=smpp_source)
    ledger = _ledger()
    dispatcher = Dispatcher(ledger, policy, gateways, clock=now)
    try:
        report = dispatcher.run_once(limit)
        left = outbox.waiting_count(ledger)
    finally:
        dispatcher.close()
        ledger.close()
    for o in report.outcomes:
        click.echo(f"{o.message_id}  {o.status:<6} {o.detail}")
    click.echo(f"dispatch: {report.count('sent')} sent, {report.count('failed')} failed, "
               f"{report.count('held')} held; {left} waiting in the outbox")


# ---- policy -----------------------------------------------------------------------------

@issuer.group("policy")
def policy_group():
    """The bank's alert policy."""


def _describe(policy: Policy):
    click.echo(f"policy: {policy.source}")
    rows = [
        ("alerts", ", ".join(k for k in codes.ALERT_KINDS if policy.alerts(k)) or "none"),
        ("not alerted", ", ".join(k for k in codes.ALERT_KINDS if not policy.alerts(k))
         or "none"),
        ("security", ", ".join(codes.SECURITY_KINDS) + " (always)"),
        ("threshold", policy.amount_text(policy.default_threshold)),
        ("large amount", policy.amount_text(policy.large_amount_limit)),
        ("delivery", "send" if policy.send_immediately else "queue"),
        ("language", f"{policy.language} (templates: {', '.join(sorted(policy.templates))})"),
        ("utc offset", f"{policy.utc_offset_min} min"),
        ("retry", f"{policy.retry_first_s} s doubling to {policy.retry_max_s} s"),
    ]
    for name, value in rows:
        click.echo(f"  {name:<13} {value}")


@policy_group.command("show")
@_friendly
def policy_show():
    """The policy in force (--policy, POSBRIDGE_ISSUER_POLICY or the defaults)."""
    _describe(_policy())


@policy_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@_friendly
def policy_check(file):
    """Check a policy file; print what it says."""
    _describe(Policy.load(file))
