"""The bridge's issuer when it is an ISO 8583 host over TCP (`posbridge serve
--upstream iso8583://HOST:PORT`, docs/iso8583.md "The bridge").

It stands where the in-process Issuer stands: `handle(mtype, body)` gives the issuer's
MAC'd CBOR response or raises what the Issuer raises (errors.py), and the Bridge turns
those into ERROR messages as it always has. Many bridges (one per board) share one
Upstream and its one connection: requests are matched to answers by terminal id
(field 41) and STAN (field 11).

The connection lives on an asyncio loop of its own thread:
  connect, sign on (0800 001), then serve; when the host drops or does not answer an
      echo test, every request waiting on it is failed and the connection is made again
      after a pause that grows to RECONNECT_MAX_S
  no message from the host for echo_interval -> echo test (0800 301); no answer to it
      within timeout -> the connection is taken for dead
  an 0800 from the host -> 0810 (never an 0800 back); nothing more is read until the
      host has taken it, and a host that does not within timeout is let go
  an answer that matches no request -> dropped; logged at the 1st, 2nd, 4th ... only
  anything else a host's message makes fail -> logged, the connection made again: no
      message of a host stops the bridge's upstream for good
  no answer to a request within timeout -> IssuerUnavailable: the board gets ERROR 5
      and reverses a purchase (the host may have charged it; the reversal undoes it)
  an answer without a MAC (the host's refusal) -> the issuer error its response code
      says: 30 IssuerRequestError, 63 IssuerSecurityError, 91 IssuerUnavailable,
      anything else IssuerInternalError
"""
import asyncio
import hashlib
import logging
import threading
import time
from urllib.parse import urlsplit

from .issuer.errors import (IssuerInternalError, IssuerRequestError, IssuerSecurityError,
                            IssuerUnavailable)
from .link import iso8583_framing as framing
from .link import iso8583_map as m
from .link import iso8583_spec as spec
from .link.iso8583_codecs import printable

log = logging.getLogger("posbridge.upstream")

TIMEOUT_S = 10.0          # under the board's 15 s answer timeout, so that it gets ERROR 5
ECHO_INTERVAL_S = 30.0
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 5.0

_REFUSED = {m.FORMAT_ERROR: IssuerRequestError, m.SECURITY_VIOLATION: IssuerSecurityError,
            m.ISSUER_INOPERATIVE: IssuerUnavailable}


def parse_url(url: str):
    """(host, port) of iso8583://HOST:PORT; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "iso8583" or not parts.hostname or parts.port is None:
        raise ValueError(f"{url!r} is not iso8583://HOST:PORT")
    return parts.hostname, parts.port


class Upstream:
    def __init__(self, host: str, port: int, *, timeout=TIMEOUT_S,
                 echo_interval=ECHO_INTERVAL_S, clock=time.time, tap=None):
        self.host, self.port = host, port
        self.tap = tap            # ("in" | "out", message): a copy of each (tap.py)
        self.timeout = timeout
        self.echo_interval = echo_interval
        self.clock = clock
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="upstream")
        self._writer = None
        self._signed_on = False
        self._pending = {}        # (terminal id field 41 or None, STAN) -> Future
        self._stan = 0            # the bridge's own, for its 0800s
        self._runner = None
        self._last_heard = 0.0
        self._closing = False
        self.connects = 0         # connections made: for the tests and the logs
        self.echoes_sent = 0
        self.unmatched = 0        # answers from the host that matched no request

    # ---- the bridge's side (any thread) -----------------------------------------

    def start(self) -> "Upstream":
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._run(), self.loop)
        return self

    def close(self):
        """Stop: the connection closed, every task of the loop ended, the loop closed."""
        # a flag as well as the cancel: asyncio.wait_for may swallow a cancel that comes
        # as the connection attempt fails (Python before 3.12), and _run would go on
        self._closing = True
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()

    def reachable(self) -> bool:
        return self._signed_on

    def handle(self, mtype: int, body: bytes) -> bytes:
        """The host's MAC'd CBOR response to the board's request, or an IssuerError."""
        try:
            iso = m.request_to_iso(mtype, body)
        except m.MappingError as exc:
            raise IssuerRequestError(str(exc)) from None
        future = asyncio.run_coroutine_threadsafe(self._exchange(iso), self.loop)
        try:
            answer = future.result(self.timeout + 5)
        except TimeoutError:   # the loop itself stuck: never leave the board waiting
            future.cancel()
            raise IssuerUnavailable("issuer host did not answer") from None
        if not m.has_mac(answer):
            code = answer.get("39")
            raise _REFUSED.get(code, IssuerInternalError)(
                f"issuer host refused {iso['t']} with {code}")
        if answer.get("t") != m.RESPONSE_MTI[iso["t"]]:
            raise IssuerInternalError(f"issuer host answered {iso['t']} with {answer.get('t')}")
        for number in m.ECHOED:
            if answer.get(number) != iso.get(number):
                raise IssuerInternalError(f"issuer host's answer does not echo field {number}")
        try:
            _, response = m.iso_to_response(answer, hashlib.sha256(body).digest())
        except m.MappingError as exc:
            raise IssuerInternalError(f"issuer host's answer is not one of ours: {exc}") \
                from None
        return response

    # ---- on the loop --------------------------------------------------------------

    async def _exchange(self, iso: dict) -> dict:
        key = (iso.get("41"), iso.get("11"))
        if self._writer is None or not self._signed_on:
            raise IssuerUnavailable("issuer host not connected")
        if key in self._pending:
            raise IssuerRequestError("a request with this terminal id and STAN is in flight")
        future = self.loop.create_future()
        self._pending[key] = future
        try:
            self._send(iso)
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except asyncio.TimeoutError:
            log.warning("%s %s/%s: no answer from the issuer host in %.0f s", iso["t"],
                        key[0].rstrip(), key[1], self.timeout)
            raise IssuerUnavailable("issuer host did not answer in time") from None
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]

    def _send(self, iso: dict):
        if self._writer is None:
            raise IssuerUnavailable("issuer host not connected")
        data = spec.pack(iso)
        if self.tap is not None:
            self.tap("out", data)
        self._writer.write(framing.frame(data))

    async def _run(self):
        delay = RECONNECT_MIN_S
        while not self._closing:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                log.warning("issuer host %s:%d: %s; again in %.1f s", self.host, self.port,
                            exc or "timeout", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            self.connects += 1
            self._writer = writer
            try:
                await self._connected(reader, writer)
                delay = RECONNECT_MIN_S
            except (OSError, framing.FramingError, asyncio.TimeoutError,
                    IssuerUnavailable) as exc:
                log.warning("issuer host %s:%d: %s", self.host, self.port,
                            exc or type(exc).__name__)
            except Exception:    # noqa: BLE001 - a host's message costs its connection only
                log.exception("issuer host %s:%d: connection failed", self.host, self.port)
            finally:
                self._drop(writer)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _connected(self, reader, writer):
        reading = asyncio.ensure_future(self._read(reader))
        try:
            await self._network(spec.SIGN_ON, reading)
            self._signed_on = True
            log.info("signed on to the issuer host %s:%d", self.host, self.port)
            while not reading.done():
                done, _ = await asyncio.wait({reading}, timeout=self.echo_interval)
                if not done and self.clock() - self._last_heard >= self.echo_interval:
                    await self._network(spec.ECHO_TEST, reading)
            reading.result()            # its error, if it ended on one
        finally:
            reading.cancel()

    async def _network(self, code: str, reading):
        """Send an 0800 and wait for its 0810; IssuerUnavailable if none comes."""
        self._stan = self._stan % 999_999 + 1
        iso = m.network(code, self._stan, self.clock())
        key = (None, iso["11"])
        future = self.loop.create_future()
        self._pending[key] = future
        if code == spec.ECHO_TEST:
            self.echoes_sent += 1
        try:
            self._send(iso)
            done, _ = await asyncio.wait({future, reading}, timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._pending.pop(key, None)
        if future not in done:
            raise IssuerUnavailable(f"no answer to 0800 {code}")
        if future.result().get("39") != m.APPROVED:
            raise IssuerUnavailable(f"0800 {code} answered {future.result().get('39')}")

    async def _read(self, reader):
        self._last_heard = self.clock()
        while True:
            data = await framing.read_message(reader, self.timeout)
            if data is None:
                raise ConnectionResetError("issuer host closed the connection")
            self._last_heard = self.clock()
            if self.tap is not None:
                self.tap("in", data)
            try:
                iso = spec.unpack(data)
            except spec.Iso8583Error as exc:
                log.warning("undecodable message from the issuer host dropped: %s", exc)
                continue
            mti = iso.get("t")
            if mti == spec.NETWORK:
                # the host's echo test: answered, never with an echo of our own; and
                # read no further until the host has taken the answer, so that a host
                # sending echo tests without reading holds no memory of ours
                self._send(m.network_response(iso))
                try:
                    await asyncio.wait_for(self._writer.drain(), self.timeout)
                except asyncio.TimeoutError:
                    raise IssuerUnavailable("issuer host does not read its answers") \
                        from None
                continue
            key = (None if mti == spec.NETWORK_RESPONSE else iso.get("41"), iso.get("11"))
            future = self._pending.get(key)
            if future is None or future.done():
                self._unmatched(mti, key)
                continue
            future.set_result(iso)

    def _unmatched(self, mti, key):
        """An answer that matches no request (late, or a hostile host's) is dropped; the
        log says so at the 1st, 2nd, 4th, 8th ... of them, so that a host sending them
        without end cannot flood it."""
        self.unmatched += 1
        if self.unmatched & (self.unmatched - 1) == 0:
            log.warning("%s %s/%s from the issuer host matches no request: dropped "
                        "(%d so far)", mti, printable(str(key[0] or "").rstrip()),
                        key[1], self.unmatched)

    def _drop(self, writer):
        self._signed_on = False
        self._writer = None
        # abort, not close: close would keep the socket until a host that stopped
        # reading had taken what is still buffered for it, that is for ever
        writer.transport.abort()
        for key, future in list(self._pending.items()):
            if not future.done():
                future.set_exception(IssuerUnavailable("issuer host connection lost"))
        self._pending.clear()


async def _cancel_all():
    """Cancel every other task of the running loop and wait for them to end."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
