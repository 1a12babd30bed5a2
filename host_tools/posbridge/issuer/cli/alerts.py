"""`posbridge issuer alerts show|subscribe|unsubscribe|set --pan PAN ...`: a
cardholder's alert preferences (preferences.py), with the bank's defaults shown where
the cardholder has none."""
import json

import click

from .. import codes, notify, preferences
from ..preferences import mask_phone
from . import common
from .common import PAN_OPTION


@click.group()
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
def alerts_show(pan, as_json):
    """A cardholder's preferences, with the bank's defaults where they have none."""
    policy = common.policy()
    with common.open_ledger() as ledger:
        card = ledger.card_on_file(pan)
    if as_json:
        click.echo(json.dumps(_holder_json(card, policy), indent=2, ensure_ascii=False))
    else:
        _show(card, policy)


def _change(pan, **changes):
    """Apply `changes` to the cardholder of `pan` and print the result."""
    policy = common.policy()
    with common.open_ledger() as ledger:
        card = ledger.card_on_file(pan)
        preferences.update(ledger, card.holder.id, **changes)
        card = ledger.card_on_file(pan)
    _show(card, policy)
    if card.holder.subscribed and not card.holder.phone:
        click.echo("note: no phone on file, so no alert can be sent (status 7)")


@alerts.command("subscribe")
@PAN_OPTION
@click.option("--phone", default=None, help="Phone number for alerts.")
@click.option("--kinds", default=None, help="Kinds chosen: comma-separated, all or none.")
@click.option("--channel", type=click.Choice(codes.CHANNELS), default=None)
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
def alerts_set(pan, kinds, add_kinds, remove_kinds, threshold, large_limit, channel,
               channel_for, phone, quiet, language):
    """Change a cardholder's preferences."""
    policy = common.policy()
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
        with common.open_ledger() as ledger:
            current = changes.get("kinds", ledger.card_on_file(pan).holder.kinds)
        changes["kinds"] = tuple(k for k in codes.ALERT_KINDS
                                 if (k in current or k in added) and k not in removed)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    _change(pan, **changes)
