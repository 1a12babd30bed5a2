"""What the `posbridge issuer` commands share: the database, key store and policy the
group was given, the time they act at, and the --pan option."""
import contextlib
import time
from pathlib import Path

import click

from ..cards import check_pan
from ..ledger import Ledger, is_url
from ..policy import Policy

DB = "posbridge.issuer.db"
KEYS = "posbridge.issuer.keys"
POLICY = "posbridge.issuer.policy"


class DatabaseLocation(click.ParamType):
    """--db: a SQLite file (a path) or a PostgreSQL database (postgresql://...)."""
    name = "PATH|URL"

    def convert(self, value, param, ctx):
        if isinstance(value, Path) or is_url(value):
            return value
        if str(value).startswith(("postgresql:", "postgres:")):
            self.fail("a PostgreSQL URL is postgresql://[USER@]HOST[:PORT]/DATABASE", param, ctx)
        path = Path(value)
        if path.is_dir():
            self.fail(f"{value} is a directory", param, ctx)
        return path


DATABASE = DatabaseLocation()


@contextlib.contextmanager
def open_ledger():
    """The database of --db with the key store of --keys, closed when the block ends."""
    meta = click.get_current_context().meta
    ledger = Ledger.open(meta[DB], meta.get(KEYS))
    try:
        yield ledger
    finally:
        ledger.close()


def policy() -> Policy:
    """The policy of --policy, else of POSBRIDGE_ISSUER_POLICY, else the defaults."""
    path = click.get_current_context().meta.get(POLICY)
    return Policy.load(path) if path else Policy.from_env()


def now() -> int:
    """The time the commands act at (tests replace it)."""
    return int(time.time())


def _checked_pan(ctx, param, value):
    # a parameter's error names the option ("Invalid value for '--pan'"), so it is
    # raised here rather than left to the group
    try:
        return check_pan(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


PAN_OPTION = click.option("--pan", required=True, callback=_checked_pan,
                          help="The card's number (12-19 digits).")
