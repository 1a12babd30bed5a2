"""`posbridge load`: simulated terminals against the issuer, and the ledger audited."""
import contextlib
import logging
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console

from ..issuer import Issuer, Ledger, LedgerError
from ..issuer.cli.common import DATABASE
from ..issuer.policy import Policy
from ..ports import PortError
from ..upstream import Upstream, parse_url
from . import fleet as fleet_module
from .audit import audit
from .boards import BridgeTarget
from .run import LoadRun
from .targets import InProcessTarget, Iso8583Target, TargetError
from .view import figures_table, watch

IN_PROCESS = "in-process"
BRIDGE = "bridge"


@click.command("load")
@click.option("--target", default=IN_PROCESS, show_default=True,
              help="in-process: an issuer in this process on --db; iso8583://HOST:PORT: "
                   "the ISO 8583 host there (posbridge issuer serve), serving --db; "
                   "several, comma-separated, share the connections; bridge: a bridge "
                   "in this process, a simulated board on a pseudo-terminal for each "
                   "terminal, its issuer in process on --db or at --upstream.")
@click.option("--upstream", default=None,
              help="--target bridge: the bridge's ISO 8583 host, iso8583://HOST:PORT, "
                   "serving --db (default: the issuer in the bridge's process).")
@click.option("--db", "database", type=DATABASE, default=None,
              help="The issuer's database (SQLite file or postgresql://...); the "
                   "terminals and cards are added to it, and it is audited at the end. "
                   "Default (in-process only): a new SQLite file, deleted after.")
@click.option("--keys", type=click.Path(dir_okay=False), default=None,
              help="The issuer's key store (default: beside the database).")
@click.option("--terminals", "count", type=click.IntRange(1, 9999), default=8,
              show_default=True, help="Simulated terminals, each with its own key and card.")
@click.option("--accounts", type=click.IntRange(min=1), default=None,
              help="Cards shared by the terminals (default: one each).")
@click.option("--connections", type=click.IntRange(1, 256), default=1, show_default=True,
              help="TCP connections to the ISO 8583 host, shared by the terminals.")
@click.option("--duration", type=click.FloatRange(min=0.1), default=None,
              help="Seconds to run (default 10 unless --purchases).")
@click.option("--purchases", type=click.IntRange(min=1), default=None,
              help="Purchases to send in all, instead of a duration.")
@click.option("--live/--no-live", default=True, show_default=True,
              help="Redraw the figures while the run lasts.")
def load(target, upstream, database, keys, count, accounts, connections, duration,
         purchases, live):
    """Simulated terminals against the issuer: DUKPT-protected, MAC'd purchases with PIN
    blocks; authorisations a second, latency percentiles, errors by kind, and the ledger
    checked for double and lost charges."""
    if duration is None and purchases is None:
        duration = 10.0
    if upstream is not None and target != BRIDGE:
        raise click.UsageError("--upstream is the bridge's: with --target bridge")
    if (upstream is not None or target not in (IN_PROCESS, BRIDGE)) and database is None:
        raise click.UsageError("an ISO 8583 host: --db names the database the host "
                               "serves (the fleet is put in it and audited)")
    # a line per purchase would cost more than the purchase: warnings only (security
    # events, failures) while the load runs
    logging.getLogger("posbridge.issuer").setLevel(logging.WARNING)
    console = Console()
    with contextlib.ExitStack() as stack:
        if database is None:
            database = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "issuer.sqlite"
            Ledger.create(database).close()
        if target == IN_PROCESS:
            def make_target():
                return InProcessTarget(Issuer(Ledger.open(database, keys), Policy()))
            title = "posbridge load: in-process issuer"
        elif target == BRIDGE:
            def make_target():
                return bridge_target(database, keys, upstream)
            title = (f"posbridge load: bridge, {count} boards, "
                     + (f"ISO 8583 host {upstream}" if upstream else "in-process issuer"))
        else:
            def make_target():
                return Iso8583Target(target.split(","), connections)
            title = f"posbridge load: ISO 8583 host {target}"
        try:
            figures, checked = run_load(database, keys, count, make_target,
                                        accounts=accounts, duration_s=duration,
                                        purchases=purchases, console=console, live=live,
                                        title=title)
        except (LedgerError, TargetError, PortError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    console.print(figures_table(figures, title, checked))
    for problem in checked.problems[:10]:
        console.print(f"  {problem}")
    if not checked.ok:
        raise click.ClickException("the ledger does not match what the terminals saw")


def run_load(database, keys, count, make_target, *, accounts=None, duration_s=None,
             purchases=None, console=None, live=False, title="", seed=None):
    """A fleet of `count` provisioned into `database`, run against make_target(), and
    the database audited: (Figures, Audit)."""
    ledger = Ledger.open(database, keys)
    try:
        fleet = fleet_module.provision(ledger, count, accounts=accounts)
    finally:
        ledger.close()
    target = make_target()
    try:
        connect = getattr(target, "connect", None)    # a target with boards to make
        if connect is not None:
            connect(fleet)
        run = LoadRun(fleet, target, duration_s=duration_s, count=purchases, seed=seed)
        figures = watch(run, title, console, live) if console is not None else run.run()
        figures.conflicts = getattr(target, "conflicts", None)
    finally:
        target.close()
    ledger = Ledger.open(database, keys)
    try:
        checked = audit(ledger, fleet, figures.approved, fleet_module.OPENING_BALANCE)
    finally:
        ledger.close()
    return figures, checked


def run_in_process(database, keys, count, **options):
    """run_load against an issuer in this process on `database`."""
    return run_load(database, keys, count,
                    lambda: InProcessTarget(Issuer(Ledger.open(database, keys), Policy())),
                    **options)


def bridge_target(database, keys, upstream=None, *, connect_timeout: float = 10.0):
    """A BridgeTarget whose bridge's issuer is in process on `database`, or the ISO 8583
    host at `upstream` through the bridge's upstream client once it has signed on."""
    if upstream is None:
        return BridgeTarget(Issuer(Ledger.open(database, keys), Policy()))
    client = Upstream(*parse_url(upstream)).start()
    deadline = time.monotonic() + connect_timeout
    while not client.reachable():
        if time.monotonic() > deadline:
            client.close()
            raise TargetError(f"no ISO 8583 host signed on at {upstream}")
        time.sleep(0.02)
    return BridgeTarget(client)
