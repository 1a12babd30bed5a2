"""`posbridge issuer dispatch`: send the outbox's due messages once, through the
built-in gateway or an SMSC over SMPP (dispatcher.py)."""
import click

from .. import outbox
from ..dispatcher import Dispatcher
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
              help="Send at most this many messages.")
def dispatch(gateway, smpp_host, smpp_port, smpp_system_id, smpp_password, smpp_source,
             limit):
    """Send the queued, held and failed messages that are due, once."""
    policy = common.policy()
    builtin = BuiltinGateway()
    gateways = {"sms": builtin, "app": builtin}
    if gateway == "smpp":
        gateways["sms"] = SmppGateway(smpp_host, smpp_port, system_id=smpp_system_id,
                                      password=smpp_password, source_addr=smpp_source)
    with common.open_ledger() as ledger:
        dispatcher = Dispatcher(ledger, policy, gateways, clock=common.now)
        try:
            report = dispatcher.run_once(limit)
            left = outbox.waiting_count(ledger)
        finally:
            dispatcher.close()
    for o in report.outcomes:
        click.echo(f"{o.message_id}  {o.status:<6} {o.detail}")
    click.echo(f"dispatch: {report.count('sent')} sent, {report.count('failed')} failed, "
               f"{report.count('held')} held; {left} waiting in the outbox")
