"""`posbridge issuer terminal add|list`: the terminal registry (issuer/terminals.py).

`posbridge provision` registers the terminals it provisions; `terminal add` registers a
terminal whose initial key was issued outside it: a database migrated from before the
registry, or a board provisioned against another copy of the key set."""
import json

import click

from .. import terminals
from ..errors import LedgerError
from . import common


@click.group("terminal")
def terminal():
    """Terminals, their initial key IDs and merchants."""


@terminal.command("add")
@click.option("--terminal-id", required=True, help="1 to 16 letters or digits.")
@click.option("--key-id", required=True,
              help="The terminal's initial key ID: BDK ID and derivation ID, 16 hex digits.")
@click.option("--merchant-id", required=True, help="ISO 8583 field 42, 1 to 15 characters.")
@click.option("--merchant-name", required=True,
              help="1 to 22 characters, as the cardholder's alerts show it.")
@click.option("--force", is_flag=True, help="Re-key a registered terminal to this key ID.")
def terminal_add(terminal_id, key_id, merchant_id, merchant_name, force):
    """Register a terminal with its initial key ID and merchant."""
    try:
        key = bytes.fromhex(key_id)
    except ValueError:
        raise LedgerError("--key-id: 16 hex digits") from None
    with common.open_ledger() as ledger:
        registered = terminals.register(ledger, terminal_id, key, merchant_id,
                                        merchant_name, force=force, now=common.now())
        last = terminals.terminals(ledger)
    counter = next(k["last_counter"] for t in last if t["terminal_id"] == terminal_id
                   for k in t["keys"] if k["active"])
    click.echo(f"terminal {registered.terminal_id}: initial key ID "
               f"{registered.initial_key_id}, merchant {merchant_id} {merchant_name!r}; "
               f"highest KSN counter used {counter}")


@terminal.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def terminal_list(as_json):
    """Every terminal: merchant, active key and the highest counter it used, retired keys."""
    with common.open_ledger() as ledger:
        rows = terminals.terminals(ledger)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for t in rows:
        click.echo(f"{t['terminal_id']:<16} {t['merchant_id']:<15} {t['merchant_name']}")
        for k in t["keys"]:
            state = "active" if k["active"] else "retired"
            click.echo(f"  key {k['initial_key_id']} {state:<7} counter {k['last_counter']}")
