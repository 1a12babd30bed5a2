"""`posbridge issuer ...`: the issuer simulator's admin commands (docs/issuer.md, CLI).

    init [--force]                         a new database with the demo data set  (cards.py)
    card add --pan ... ...                 one more card, account and cardholder  (cards.py)
    ledger | journal | outbox [--json]     what the database holds                (listings.py)
    alerts show|subscribe|unsubscribe|set  a cardholder's preferences             (alerts.py)
    account freeze|unfreeze|set-limit|statement, remind   account changes, alerted (account.py)
    dispatch [--gateway builtin|smpp ...]  send what the outbox holds, once       (dispatch.py)
    policy show|check                      the bank's alert policy                (policy.py)
    terminal add|list                      the terminal registry                  (terminals.py)
    serve --listen HOST:PORT [--db PATH]   the issuer as an ISO 8583 host over TCP (serve.py)

`--db PATH` (or POSBRIDGE_ISSUER_DB) picks the database, var/issuer.sqlite by default;
`--keys PATH` (or POSBRIDGE_ISSUER_KEYS) its key store, by default beside it
(var/issuer.keys);
`--policy FILE.toml` (or POSBRIDGE_ISSUER_POLICY) the bank's alert policy; common.py
has what the commands share. A card is named by its full PAN; no output ever holds a
full PAN or a PIN. Errors are one line and a non-zero exit, never a traceback:
IssuerGroup.invoke turns them into click's.
"""
import sqlite3
from pathlib import Path

import click

from ..errors import LedgerError
from ..ledger import DEFAULT_PATH
from . import account, alerts, cards, common, dispatch, listings, policy, serve, terminals


class IssuerGroup(click.Group):
    """The one place where the issuer's errors meet click: a LedgerError (no database,
    unknown card, a refused change) or a ValueError (a check of a person's input: PAN,
    amount, date, policy file) is the message a person acts on; a database failure is
    named as one."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (LedgerError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            raise click.ClickException(f"issuer database: {exc}") from None


@click.group(cls=IssuerGroup)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_PATH,
              envvar="POSBRIDGE_ISSUER_DB", show_default=True,
              help="The issuer's SQLite database (env POSBRIDGE_ISSUER_DB).")
@click.option("--keys", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="POSBRIDGE_ISSUER_KEYS",
              help="The issuer's key store, mode 0600 (env POSBRIDGE_ISSUER_KEYS; "
                   "default: beside the database, var/issuer.keys).")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None,
              help="The bank's alert policy, a TOML file (env POSBRIDGE_ISSUER_POLICY; "
                   "default: the shipped default_policy.toml).")
@click.pass_context
def issuer(ctx, db, keys, policy_file):
    """Issuer simulator: ledger, cards, alerts, outbox."""
    ctx.meta[common.DB] = db
    ctx.meta[common.KEYS] = keys
    ctx.meta[common.POLICY] = policy_file


for _command in (cards.init, cards.card, listings.ledger_command, listings.journal_command,
                 listings.outbox_command, alerts.alerts, account.account, account.remind,
                 dispatch.dispatch, policy.policy_group, terminals.terminal, serve.serve):
    issuer.add_command(_command)
