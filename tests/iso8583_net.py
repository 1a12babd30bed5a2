"""What the ISO 8583 tests share: the issuer host on a loop of its own thread, a plain
blocking client, and a TCP proxy that can alter the messages crossing it."""
import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import threading

from posbridge.issuer.iso8583_server import serve
from posbridge.link import iso8583_framing as framing
from posbridge.link import iso8583_spec as spec


async def _cancel_all():
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def stop_loop(loop, thread):
    """End every task of `loop` (run by `thread`), then the loop."""
    asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


class RunningHost:
    """`posbridge issuer serve` in this process, on a free port of 127.0.0.1."""

    def __init__(self, issuer, **options):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        ready = threading.Event()
        self.address = None

        def on_ready(address):
            self.address = address
            ready.set()
        self.task = asyncio.run_coroutine_threadsafe(
            serve(issuer, "127.0.0.1", 0, ready=on_ready, **options), self.loop)
        assert ready.wait(10), "the ISO 8583 host did not start"

    @property
    def port(self):
        return self.address[1]

    def close(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        try:
            self.task.result(timeout=10)
        except BaseException:      # noqa: BLE001 - cancelled
            pass
        stop_loop(self.loop, self.thread)


POSBRIDGE = [sys.executable, "-m", "posbridge.cli"]


def start_posbridge(args, cwd):
    """`posbridge ARGS` as a process of its own, its output (stderr too) on stdout."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(POSBRIDGE + [str(a) for a in args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def line_with(proc, fragment, seconds=20):
    """The first line of the process's output holding `fragment` (all it said, if none)."""
    seen = []
    while True:
        ready, _, _ = select.select([proc.stdout], [], [], seconds)
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if fragment in line:
            return line
    raise AssertionError(f"no {fragment!r} in: {''.join(seen)}")


def stop_process(proc):
    """SIGTERM, as a service manager stops it; its exit status."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()


class HostProcess:
    """`posbridge issuer serve` as a process of its own on the database at `db`, on
    `port` of 127.0.0.1 (0: a free one)."""

    def __init__(self, db, keys=None, cwd=None, port=0):
        key_args = ["--keys", keys] if keys is not None else []
        self.proc = start_posbridge(["issuer", "--db", db, *key_args, "serve", "--listen",
                                     f"127.0.0.1:{port}"],
                                    cwd or (os.path.dirname(str(keys or db))))
        self.port = int(line_with(self.proc, "listening on").rsplit(":", 1)[1])
        # what it logs from here on is not read: let it not fill the pipe
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def close(self):
        if self.proc.poll() is None:
            return stop_process(self.proc)
        return self.proc.returncode


class Client:
    """A peer of the host speaking raw bytes or ISO fields, one message at a time."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send(self, iso: dict):
        self.send_raw(framing.frame(spec.pack(iso)))

    def receive_raw(self):
        """The next message's bytes, or None when the host closed the connection."""
        header = self._exactly(2)
        if header is None:
            return None
        return self._exactly(int.from_bytes(header, "big"))

    def receive(self):
        data = self.receive_raw()
        return None if data is None else spec.unpack(data)

    def exchange(self, iso: dict) -> dict:
        self.send(iso)
        return self.receive()

    def closed_by_host(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def _exactly(self, n):
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def close(self):
        self.sock.close()


class TamperProxy:
    """Between the bridge and the host: forwards each ISO 8583 message, after
    `alter_request(fields)` / `alter_response(fields)` (they change the decoded fields
    in place; None: unchanged), and records every message each way. `silent` drops
    the host's answers to financial requests (a host that does not answer)."""

    def __init__(self, host_port):
        self.host_port = host_port
        self.alter_request = None
        self.alter_response = None
        self.silent = False
        self.requests, self.responses = [], []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        self.conns = []

    async def _start(self):
        return await asyncio.start_server(self._connection, "127.0.0.1", 0)

    async def _connection(self, reader, writer):
        host_reader, host_writer = await asyncio.open_connection("127.0.0.1", self.host_port)
        self.conns.append((writer, host_writer))
        await asyncio.gather(self._pump(reader, host_writer, True),
                             self._pump(host_reader, writer, False),
                             return_exceptions=True)
        writer.close()
        host_writer.close()

    async def _pump(self, reader, writer, upward):
        try:
            while True:
                data = await framing.read_message(reader, 30)
                if data is None:
                    break
                fields = spec.unpack(data)
                (self.requests if upward else self.responses).append(dict(fields))
                alter = self.alter_request if upward else self.alter_response
                if alter is not None and fields["t"] not in (spec.NETWORK,
                                                             spec.NETWORK_RESPONSE):
                    alter(fields)
                    data = spec.pack(fields)
                if self.silent and not upward and fields["t"] != spec.NETWORK_RESPONSE:
                    continue
                writer.write(framing.frame(data))
                await writer.drain()
        finally:
            writer.close()

    def drop_connections(self):
        """Cut every connection through the proxy (the host gone, for a moment)."""
        def cut():
            for a, b in self.conns:
                a.close()
                b.close()
            self.conns.clear()
        self.loop.call_soon_threadsafe(cut)

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.drop_connections()
        stop_loop(self.loop, self.thread)
