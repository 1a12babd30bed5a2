"""The console's HTTP and websocket server (aiohttp): the page and its files from the
package (static/), and one websocket per page: the state as events, and the page's
commands, checked (page_input.py) before the terminal acts on them.

A page is not trusted. A request whose Host is not one of the console's own names (an
IP address, localhost, or the name it was told to listen on) is refused: that is a page
of another site whose name was pointed at this address (DNS rebinding), whose Origin
would otherwise agree with its Host. A websocket from another origin (a web site open
in the same browser) is refused; a message that is not a command gets a refusal and changes
nothing; the page's files carry a Content-Security-Policy that lets the page load
nothing from anywhere but this server."""
import asyncio
import errno
import ipaddress
import json
import logging
from pathlib import Path

from aiohttp import WSMsgType, web

from .hub import Hub
from .page_input import PageInputError, Ping, PowerCut
from .terminal import Terminal

log = logging.getLogger("posbridge")

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
MAX_WS_MESSAGE = 4096


class PortInUse(Exception):
    pass


@web.middleware
async def _headers(request, handler):
    response = await handler(request)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def _own_name(host: str, names) -> bool:
    """Whether the Host header's name (its port left off) is one of the console's: an IP
    address (a rebound page's Host is its site's name, never an address), localhost, or
    one of `names`."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost") or name in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def make_app(terminal: Terminal, hub: Hub, names=()) -> web.Application:
    """`names`: host names besides addresses and localhost the console is reached by."""
    names = {n.rstrip(".").lower() for n in names}

    @web.middleware
    async def own_host(request, handler):
        if not _own_name(request.host or "", names):
            log.warning("console: request for host %r refused", (request.host or "")[:80])
            raise web.HTTPForbidden(text="not this console's address")
        return await handler(request)

    app = web.Application(middlewares=[_headers, own_host])
    pages: set = set()

    async def index(request):
        return web.FileResponse(STATIC / "index.html")

    async def websocket(request):
        origin = request.headers.get("Origin")
        if origin is not None and origin not in (f"http://{request.host}",
                                                 f"https://{request.host}"):
            log.warning("console: websocket from origin %s refused", origin)
            raise web.HTTPForbidden(text="another site's page may not drive this terminal")
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_WS_MESSAGE)
        await ws.prepare(request)
        pages.add(ws)
        queue = hub.subscribe()       # before the snapshot: nothing falls between them
        writer = asyncio.create_task(_write(ws, queue))
        try:
            for event in terminal.snapshot():
                await ws.send_str(json.dumps(event, ensure_ascii=False))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT or msg.type == WSMsgType.BINARY:
                    answer = await _act(terminal, msg.data)
                    if answer:
                        await ws.send_str(json.dumps(answer))
                elif msg.type == WSMsgType.ERROR:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            hub.unsubscribe(queue)
            writer.cancel()
            pages.discard(ws)
        return ws

    async def close_pages(app):
        for ws in list(pages):
            await ws.close(code=1001, message=b"console stopping")

    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_static("/static", STATIC, follow_symlinks=False)
    app.on_shutdown.append(close_pages)
    return app


async def _act(terminal: Terminal, raw):
    """The answer to the page's message: a pong, a refusal, or None when it was done."""
    try:
        command = terminal.parse(raw)
    except PageInputError as exc:
        return {"type": "refused", "reason": f"refused: {exc}"}
    if isinstance(command, Ping):
        return {"type": "pong", "n": command.n}
    try:
        if isinstance(command, PowerCut):
            # seconds of work (the firmware boots again): off the event loop
            refusal = await asyncio.to_thread(terminal.act, command)
        else:
            refusal = terminal.act(command)
    except Exception:              # noqa: BLE001 - a page's message never stops the server
        log.exception("console: command failed")
        refusal = "the console could not do that"
    return {"type": "refused", "reason": refusal} if refusal else None


async def _write(ws, queue):
    while True:
        text = await queue.get()
        if text is None:
            await ws.close(code=1008, message=b"page stopped reading")
            return
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            return


async def serve(terminal: Terminal, hub: Hub, host: str, port: int, stop: asyncio.Event,
                on_listening):
    """Serve until `stop` is set: listen first (PortInUse if the port is taken), then
    boot the board, so that a taken port is said before anything starts."""
    runner = web.AppRunner(make_app(terminal, hub, names=(host,)), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {host} is in use (another console, or "
                                f"another program): choose another with --port") from None
            raise
        bound = runner.addresses[0]
        hub.bind(asyncio.get_running_loop())
        on_listening(bound[0], bound[1])
        started = asyncio.ensure_future(asyncio.to_thread(terminal.start))
        started.add_done_callback(lambda task: task.exception() and stop.set())
        await stop.wait()
        # a Ctrl-C while the board boots: let the boot end, then the caller stops it all
        await asyncio.wait([started])
        if started.exception():
            raise started.exception()
    finally:
        await runner.cleanup()
