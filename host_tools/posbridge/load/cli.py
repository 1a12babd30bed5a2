"""`posbridge load`: simulated terminals against the issuer, and the ledger audited."""
import contextlib
import logging
import tempfile
from pathlib import Path

import click
from rich.console import Console

from ..issuer import Issuer, Ledger, LedgerError
from ..issuer.cli.common import DATABASE
from ..issuer.policy import Policy
from . import fleet as fleet_module
from .audit import audit
from .run import LoadRun
from .targets import InProcessTarget
from .view import figures_table, watch


@click.command("load")
@click.option("--db", "database", type=DATABASE, default=None,
              help="The issuer's database (SQLite file or postgresql://...); the "
                   "terminals and cards are added to it. Default: a new SQLite file, "
                   "deleted after.")
@click.option("--keys", type=click.Path(dir_okay=False), default=None,
              help="The issuer's key store (default: beside the database).")
@click.option("--terminals", "count", type=click.IntRange(1, 9999), default=8,
              show_default=True, help="Simulated terminals, each with its own key and card.")
@click.option("--accounts", type=click.IntRange(min=1), default=None,
              help="Cards shared by the terminals (default: one each).")
@click.option("--duration", type=click.FloatRange(min=0.1), default=None,
              help="Seconds to run (default 10 unless --purchases).")
@click.option("--purchases", type=click.IntRange(min=1), default=None,
              help="Purchases to send in all, instead of a duration.")
@click.option("--live/--no-live", default=True, show_default=True,
              help="Redraw the figures while the run lasts.")
def load(database, keys, count, accounts, duration, purchases, live):
    """Simulated terminals against the in-process issuer: DUKPT-protected, MAC'd
    purchases with PIN blocks; authorisations a second, latency percentiles, errors by
    kind, and the ledger checked for double and lost charges."""
    if duration is None and purchases is None:
        duration = 10.0
    # a line per purchase would cost more than the purchase: warnings only (security
    # events, failures) while the load runs
    logging.getLogger("posbridge.issuer").setLevel(logging.WARNING)
    console = Console()
    with contextlib.ExitStack() as stack:
        if database is None:
            database = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "issuer.sqlite"
            Ledger.create(database).close()
        try:
            result = run_in_process(database, keys, count, accounts=accounts,
                                    duration_s=duration, purchases=purchases,
                                    console=console, live=live)
        except LedgerError as exc:
            raise click.ClickException(str(exc)) from None
    figures, checked = result
    console.print(figures_table(figures, "posbridge load: in-process issuer", checked))
    for problem in checked.problems[:10]:
        console.print(f"  {problem}")
    if not checked.ok:
        raise click.ClickException("the ledger does not match what the terminals saw")


def run_in_process(database, keys, count, *, accounts=None, duration_s=None, purchases=None,
                   console=None, live=False, seed=None):
    """A fleet provisioned into `database`, run against an issuer in this process on
    it, and audited: (Figures, Audit)."""
    ledger = Ledger.open(database, keys)
    try:
        fleet = fleet_module.provision(ledger, count, accounts=accounts)
    finally:
        ledger.close()
    issuer = Issuer(Ledger.open(database, keys), Policy())
    target = InProcessTarget(issuer)
    try:
        run = LoadRun(fleet, target, duration_s=duration_s, count=purchases, seed=seed)
        figures = watch(run, "posbridge load: in-process issuer", console, live) \
            if console is not None else run.run()
        checked = audit(issuer.ledger, fleet, figures.approved, fleet_module.OPENING_BALANCE)
    finally:
        target.close()
    return figures, checked
