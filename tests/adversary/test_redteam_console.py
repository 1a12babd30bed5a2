"""A hostile web page or another local program against the browser console
(`posbridge console`, posbridge/web/server.py): the server under aiohttp's test server,
the terminal behind it a recorder of what the page made it do.

DNS rebinding: a page of evil.example whose name the attacker points at 127.0.0.1 after
loading talks to the console as "its own" site: the browser sends Host: evil.example and
Origin: http://evil.example, which agree with each other. Only the Host header tells the
console that the page is not one of its own addresses."""
import asyncio
import json

import aiohttp
from aiohttp.test_utils import TestServer

from posbridge.web.hub import Hub
from posbridge.web.page_input import Key, PageInputError, parse
from posbridge.web.server import make_app


class RecordingTerminal:
    """What the console's server needs of a terminal, recording the commands it acts on."""

    def __init__(self):
        self.acted = []

    def snapshot(self):
        return [{"type": "hello", "cards": []}]

    def parse(self, raw):
        return parse(raw, {1})

    def act(self, command):
        self.acted.append(command)
        return None


async def _try_websocket(headers):
    """(HTTP status or 101, commands the terminal acted on) for a page that opens the
    websocket with `headers` and presses the key 5."""
    terminal = RecordingTerminal()
    server = TestServer(make_app(terminal, Hub()), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(server.make_url("/ws"), headers=headers) as ws:
                    first = await ws.receive_json(timeout=10)
                    assert first["type"] == "hello"
                    await ws.send_str(json.dumps({"type": "key", "key": "5"}))
                    await ws.send_str(json.dumps({"type": "ping", "n": 1}))
                    assert (await ws.receive_json(timeout=10))["type"] == "pong"
                    status = 101
            except aiohttp.WSServerHandshakeError as exc:
                status = exc.status
            async with session.get(server.make_url("/"), headers=headers) as page:
                page_status = page.status
    finally:
        await server.close()
    return status, page_status, terminal.acted


def test_dns_rebinding_page_cannot_drive_the_terminal():
    status, page_status, acted = asyncio.run(_try_websocket(
        {"Host": "evil.example:8765", "Origin": "http://evil.example:8765"}))
    assert status == 403 and acted == []
    assert page_status == 403          # nor read the page, the rebinding's first step


def test_another_sites_page_is_refused():
    """Another site, a sandboxed or file page (Origin null), a look-alike name, and
    another local web server's page (the same address, another port)."""
    for origin, host in (("http://evil.example", "127.0.0.1:8765"),
                         ("null", "127.0.0.1:8765"),
                         ("http://127.0.0.1.evil.example:8765", "127.0.0.1:8765"),
                         ("http://127.0.0.1:3000", "127.0.0.1:8765")):
        status, _, acted = asyncio.run(_try_websocket({"Origin": origin, "Host": host}))
        assert status == 403 and acted == [], origin


def test_the_consoles_own_page_by_loopback_name_or_address_is_served():
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "127.0.0.1"):
        status, page_status, acted = asyncio.run(_try_websocket(
            {"Host": host, "Origin": f"http://{host}"}))
        assert (status, page_status, acted) == (101, 200, [Key("5")]), host


def test_a_page_message_that_is_not_a_command_changes_nothing():
    for raw in ('{"type": "key", "key": "55"}', '{"type": "swipe", "card": 2}',
                '{"type": "swipe", "card": true}', "[" * 400 + "]" * 400,
                '{"type": "faults", "slow": "yes"}', b"\xff\xfe", "x" * 600):
        try:
            parse(raw, {1})
        except PageInputError:
            continue
        raise AssertionError(f"{raw!r} was taken")


async def _get_statuses(paths):
    server = TestServer(make_app(RecordingTerminal(), Hub()), host="127.0.0.1")
    await server.start_server()
    statuses = {}
    try:
        async with aiohttp.ClientSession() as session:
            for path in paths:
                url = f"http://127.0.0.1:{server.port}{path}"
                async with session.get(aiohttp.client.URL(url, encoded=True)) as reply:
                    statuses[path] = (reply.status, await reply.text())
    finally:
        await server.close()
    return statuses


def test_the_static_files_give_nothing_outside_their_directory():
    paths = ["/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py",
             "/static/%2e%2e%2f%2e%2e%2fissuer/keystore.py", "/static//etc/passwd"]
    for path, (status, text) in asyncio.run(_get_statuses(paths)).items():
        assert status in (400, 403, 404), path
        assert "import" not in text and "root:" not in text, path
