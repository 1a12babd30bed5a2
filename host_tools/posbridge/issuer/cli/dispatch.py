"""`posbridge issuer dispatch`: send the outbox's due messages once, through the
built-in gateway or an SMSC over SMPP (dispatcher.py), by one worker or several (threads,
each with its own connection and gateways; no message is sent twice)."""
import threading

import click

from .. import outbox
from ..dispatcher import Dispatcher, DispatchReport
from ..gateways import BuiltinGateway
from ..smpp_gateway import DEFAULT_PORT, SmppGateway
from . import common


@click.command("dispatch")
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
              help="Send at most this many messages (each worker).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Dispatchers working the outbox side by side.")
def dispatch(gateway, smpp_host, smpp_port, smpp_system_id, smpp_password, smpp_source,
             limit, workers):
    """Send the queued, held and failed messages that are due, once."""
    policy = common.policy()

    def gateways():
        builtin = BuiltinGateway()
        made = {"sms": builtin, "app": builtin}
        if gateway == "smpp":
            made["sms"] = SmppGateway(smpp_host, smpp_port, system_id=smpp_system_id,
                                      password=smpp_password, source_addr=smpp_source)
        return made
    outcomes, failures = [], []

    def work():
        try:
            with common.open_ledger() as ledger:
                dispatcher = Dispatcher(ledger, policy, gateways(), clock=common.now)
                try:
                    outcomes.extend(dispatcher.run_once(limit).outcomes)
                finally:
                    dispatcher.close()
        except Exception as exc:           # noqa: BLE001 - reported after the others end
            failures.append(exc)
    if workers == 1:
        work()
    else:
        # click's context (the --db and --keys) is the main thread's: hand it over
        ctx = click.get_current_context()

        def in_context():
            with ctx:
                work()
        threads = [threading.Thread(target=in_context) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    with common.open_ledger() as ledger:
        left = outbox.waiting_count(ledger)
    report = DispatchReport(outcomes)
    for o in report.outcomes:
        click.echo(f"{o.message_id}  {o.status:<6} {o.detail}")
    click.echo(f"dispatch: {report.count('sent')} sent, {report.count('failed')} failed, "
               f"{report.count('held')} held; {left} waiting in the outbox")
