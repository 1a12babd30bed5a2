"""posbridge console as a process, without a browser: it listens on 127.0.0.1 unless
told otherwise, refuses a port in use before it starts anything, refuses a websocket
from another site's page and an oversized message, and Ctrl-C stops it with no
MicroPython process left behind."""
import asyncio
import shutil
import socket
import subprocess
import urllib.request

import aiohttp

from .console_process import ROOT, ConsoleProcess, alive, console_command, wait_until


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, dict(response.headers), response.read().decode()


def test_a_port_in_use_is_refused_with_a_clear_message():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(console_command("--port", str(port)), cwd=ROOT, timeout=60,
                             capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 1
    out = " ".join((run.stdout + run.stderr).split())
    assert f"port {port} on 127.0.0.1 is in use" in out
    assert "--port" in out
    assert "Traceback" not in out


def test_ctrl_c_stops_the_console_and_its_board():
    console = ConsoleProcess()
    try:
        assert console.url.startswith("http://127.0.0.1:")     # local unless told otherwise
        boards = wait_until(console.board_pids, timeout=30)
        assert boards, "no board process under the console"
        status, headers, html = _get(console.url)
        assert status == 200 and "PIN pad" in html
        # the page may load nothing from anywhere else
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "https://" not in html and "http://" not in html
    finally:
        code = console.stop()
    assert code == 0, console.output
    assert "console stopped" in console.output
    assert not [pid for pid in boards if alive(pid)], "the board outlived the console"


async def _websocket_checks(url):
    ws_url = url.replace("http://", "ws://") + "ws"
    async with aiohttp.ClientSession() as session:
        # a page of another site, open in the same browser, may not drive the terminal
        try:
            async with session.ws_connect(ws_url, headers={"Origin": "http://evil.example"}):
                refused_origin = False
        except aiohttp.WSServerHandshakeError as exc:
            refused_origin = exc.status == 403
        # an oversized message closes that page's websocket, and nothing else
        async with session.ws_connect(ws_url) as ws:
            first = await ws.receive_json(timeout=10)
            await ws.send_str("x" * 100_000)
            closed = None
            while closed is None:
                msg = await ws.receive(timeout=10)
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING):
                    closed = ws.close_code
        async with session.ws_connect(ws_url) as ws:
            await ws.send_json({"type": "ping", "n": 5})
            pong = None
            while pong is None:
                msg = await ws.receive_json(timeout=10)
                if msg["type"] == "pong":
                    pong = msg
    return refused_origin, first, closed, pong


def test_websocket_from_another_origin_or_oversized_is_refused():
    console = ConsoleProcess()
    try:
        refused_origin, first, closed, pong = asyncio.run(_websocket_checks(console.url))
        assert refused_origin
        assert first["type"] == "hello"
        assert closed == 1009                  # message too big
        assert pong == {"type": "pong", "n": 5}
    finally:
        assert console.stop() == 0, console.output


async def _events_until(url, predicate, timeout=30):
    ws_url = url.replace("http://", "ws://") + "ws"
    seen = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url) as ws:
            async def read():
                while not predicate(seen):
                    seen.append(await ws.receive_json())
            await asyncio.wait_for(read(), timeout)
    return seen


def test_a_firmware_that_stops_by_itself_is_said_on_the_page(tmp_path):
    firmware = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", firmware)
    (firmware / "unix_main.py").write_text(
        "print('unix_main: cannot go on')\nraise SystemExit(3)\n")
    console = ConsoleProcess("--firmware", str(firmware))
    try:
        events = asyncio.run(_events_until(console.url, lambda seen: any(
            e.get("name") == "FIRMWARE_STOPPED" for e in seen)))
        note = next(e for e in events if e.get("name") == "FIRMWARE_STOPPED")
        assert "cannot go on" in note["problem"]
        assert {"type": "power", "state": "stopped"}.items() <= next(
            e for e in reversed(events) if e["type"] == "power").items()
    finally:
        assert console.stop() == 0, console.output
