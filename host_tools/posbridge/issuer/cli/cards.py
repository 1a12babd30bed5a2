"""`posbridge issuer init` and `posbridge issuer card add`: a database and its cards."""
import click

from ...link.pan import mask_pan
from .. import cards, codes
from ..cards import check_pan, parse_expiry
from ..demo_data import DEMO_BDK_ID, DEMO_MERCHANT_NAME, DEMO_TERMINAL_ID, load_demo
from ..ledger import Ledger
from ..money import currency_code, format_amount, parse_amount
from ..pins import check_pin_format
from ..preferences import check_phone
from . import common


@click.command()
@click.option("--force", is_flag=True, help="Replace an existing database.")
def init(force):
    """Create the database and its key store (mode 0600) with the demo key set and test
    cards (docs/issuer.md)."""
    meta = click.get_current_context().meta
    path = meta[common.DB]
    ledger = Ledger.create(path, force=force, keys=meta.get(common.KEYS))
    try:
        count = load_demo(ledger)
        on_file = ledger.cards()
    finally:
        ledger.close()
    click.echo(f"issuer database {ledger.path}, key store {ledger.keys.path}: key set "
               f"{DEMO_BDK_ID} (X9.24-3 test BDK), {count} demo test cards "
               "(docs/issuer.md lists them with their PIN)")
    for card in on_file:
        click.echo(f"  {card.masked}  {card.status:<7} {card.expiry}  {card.holder.name}")
    click.echo(f"terminal {DEMO_TERMINAL_ID} ({DEMO_MERCHANT_NAME}) registered with the "
               "demo initial key ID, as the emulator provisions it")


@click.group()
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
        threshold = parse_amount(alert_threshold, common.policy().currency)
        if threshold < 0:
            raise ValueError("alert threshold: 0 or more expected")
    if phone is not None:
        check_phone(phone)
    kinds = tuple(k.strip() for k in kinds.split(",") if k.strip())
    for kind in kinds:
        if kind not in codes.ALERT_KINDS:
            raise ValueError(f"alert kind {kind!r}: one of {', '.join(codes.ALERT_KINDS)}")
    with common.open_ledger() as ledger:
        cards.add(ledger, pan=pan, pin=pin, expiry=expiry, available=available,
                  currency=currency, name=name, phone=phone, subscribed=subscribe,
                  channel=channel, kinds=kinds, status=status, purchase_limit=purchase_limit,
                  threshold=threshold)
    click.echo(f"added card {mask_pan(pan)}: {status}, expires {expiry}, "
               f"{format_amount(available, currency)}")
