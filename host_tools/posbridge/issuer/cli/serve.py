"""`posbridge issuer serve --listen HOST:PORT`: the issuer as an ISO 8583 host over TCP
(issuer/iso8583_server.py, docs/iso8583.md), until Ctrl-C or SIGTERM."""
import asyncio
import logging
import signal

import click

from ..iso8583_server import serve as serve_iso8583
from ..service import Issuer
from . import common

log = logging.getLogger("posbridge.issuer")


def parse_address(text: str):
    """(host, port) of "HOST:PORT" ("[::1]:PORT" for an IPv6 address)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


@click.command("serve")
@click.option("--listen", required=True, help="HOST:PORT to listen on (port 0: any free).")
@click.option("--db", default=None,
              help="The issuer's database (default: the group's --db, var/issuer.sqlite).")
def serve(listen, db):
    """Answer ISO 8583 0100/0200/0400/0800 over TCP, with the issuer on --db."""
    host, port = parse_address(listen)
    meta = click.get_current_context().meta
    issuer = Issuer.open(db or meta[common.DB], keys=meta.get(common.KEYS),
                         policy=common.policy())

    async def main():
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        await serve_iso8583(issuer, host, port,
                            ready=lambda a: click.echo(f"listening on {a[0]}:{a[1]}"))
    try:
        asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc}") from None
    finally:
        issuer.close()
    log.info("ISO 8583 host stopped")
