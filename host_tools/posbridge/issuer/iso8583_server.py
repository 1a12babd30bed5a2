"""The issuer as an ISO 8583 host over TCP (docs/iso8583.md): asyncio, many connections.

Each request is rebuilt into the terminal's CBOR body (link/iso8583_map.py), answered
by the unchanged Issuer.handle, whose MAC'd CBOR response is mapped back to ISO 8583.
The issuer runs on one worker thread: it holds one database connection, and a slow
answer (an SMS gateway) must not stop the event loop from serving other connections.

What a peer can send and what it gets:
  a well-formed 0100/0200/0400          -> 0110/0210/0410 with the issuer's MAC
  one the issuer cannot answer under a key (security, unavailable, internal)
                                        -> the response MTI, 39 = 63/91/96, no MAC
  an 0100/0200/0400 that is not one of ours (missing, unknown or inconsistent field,
      undecodable)                      -> the response MTI, 39 = 30, STAN and terminal
                                           id echoed when readable, no MAC
  0800 (sign-on 001, echo test 301)     -> 0810, 39 = 00 (never an 0800 back)
  any other MTI, or none readable       -> logged and dropped
  a length header of 0 or too large, a message cut short, nothing for idle_timeout,
      a message not complete within read_timeout -> logged, connection closed
  a connection beyond max_connections     -> closed at once
No message of any peer can stop the server: each connection has its own task, and
everything a connection's handler raises ends that connection only."""
import asyncio
import concurrent.futures
import logging

from ..link import iso8583_framing as framing
from ..link import iso8583_map as m
from ..link import iso8583_spec as spec
from .errors import IssuerInternalError, IssuerRequestError, IssuerSecurityError, IssuerUnavailable

log = logging.getLogger("posbridge.issuer.iso8583")

READ_TIMEOUT_S = 10.0       # for the rest of a message once its header came
IDLE_TIMEOUT_S = 300.0      # a connection with no message for this long is closed
WRITE_TIMEOUT_S = 10.0      # a peer that does not read its answers is let go
MAX_IN_FLIGHT = 64          # requests of one connection being answered at once
MAX_CONNECTIONS = 1024      # more are closed at once: file descriptors are finite

_REFUSALS = {IssuerRequestError: m.FORMAT_ERROR, IssuerSecurityError: m.SECURITY_VIOLATION,
             IssuerUnavailable: m.ISSUER_INOPERATIVE, IssuerInternalError: m.SYSTEM_MALFUNCTION}


def _who(iso: dict) -> str:
    return f"{iso.get('t', '????')} {str(iso.get('41', '?')).rstrip()}/{iso.get('11', '?')}"


class IsoHost:
    def __init__(self, issuer, *, read_timeout=READ_TIMEOUT_S, idle_timeout=IDLE_TIMEOUT_S,
                 write_timeout=WRITE_TIMEOUT_S, max_message=framing.MAX_MESSAGE,
                 max_connections=MAX_CONNECTIONS):
        self.max_connections = max_connections
        self.issuer = issuer
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        self.max_message = max_message
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "issuer")
        self._server = None
        self._tasks = set()         # one per connection
        self.connections = 0

    async def start(self, host: str, port: int):
        self._server = await asyncio.start_server(self._connection, host, port)
        return self._server.sockets[0].getsockname()[:2]

    async def serve_forever(self):
        async with self._server:
            await self._server.serve_forever()

    async def close(self):
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._worker.shutdown(wait=True)

    # ---- one connection ----------------------------------------------------------

    async def _connection(self, reader, writer):
        peer = writer.get_extra_info("peername")
        if self.connections >= self.max_connections:
            log.warning("connection from %s refused: %d open", peer, self.connections)
            writer.close()
            return
        me = asyncio.current_task()
        self._tasks.add(me)
        self.connections += 1
        log.info("connection from %s", peer)
        write_lock = asyncio.Lock()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        tasks = set()
        try:
            while True:
                try:
                    data = await framing.read_message(reader, self.read_timeout,
                                                      self.idle_timeout, self.max_message)
                except framing.FramingError as exc:
                    log.warning("%s: %s; connection closed", peer, exc)
                    break
                except asyncio.TimeoutError:
                    log.warning("%s: no message in time; connection closed", peer)
                    break
                if data is None:
                    break
                await slots.acquire()
                task = asyncio.ensure_future(self._answer(data, writer, write_lock, peer))
                tasks.add(task)
                task.add_done_callback(lambda t: (tasks.discard(t), slots.release()))
        except (ConnectionError, OSError) as exc:
            log.info("%s: %s", peer, exc)
        except Exception:        # noqa: BLE001 - one connection's fault ends it alone
            log.exception("%s: connection failed", peer)
        finally:
            for task in tasks:
                task.cancel()
            writer.close()
            self._tasks.discard(me)
            self.connections -= 1
            log.info("connection from %s closed", peer)

    async def _answer(self, data: bytes, writer, write_lock, peer):
        try:
            answer = await self.respond(data)
            if answer is None:
                return
            async with write_lock:
                writer.write(framing.frame(spec.pack(answer)))
                await asyncio.wait_for(writer.drain(), self.write_timeout)
        except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
            log.info("%s: answer not delivered: %s", peer, type(exc).__name__)
            writer.close()
        except Exception:        # noqa: BLE001 - never the server's end
            log.exception("%s: answer failed", peer)

    async def respond(self, data: bytes):
        """The ISO fields answering one message, or None to send nothing."""
        try:
            iso = spec.unpack(data)
        except spec.Iso8583Error as exc:
            iso = exc.fields
            if iso.get("t") not in m.RESPONSE_MTI:
                log.warning("undecodable message dropped (%d bytes)", len(data))
                return None
            log.warning("%s: format error: %s", _who(iso), exc)
            return m.refusal(iso, m.FORMAT_ERROR)
        mti = iso.get("t")
        if mti == spec.NETWORK:
            return self._network(iso)
        if mti not in m.REQUEST_MTIS:
            log.warning("MTI %s not served: dropped", mti)
            return None
        try:
            mtype, body = m.iso_to_request(iso)
        except m.MappingError as exc:
            log.warning("%s: format error: %s", _who(iso), exc)
            return m.refusal(iso, m.FORMAT_ERROR)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self._worker, self.issuer.handle,
                                                  mtype, body)
        except tuple(_REFUSALS) as exc:
            code = next(c for kind, c in _REFUSALS.items() if isinstance(exc, kind))
            log.warning("%s refused (%s): %s", _who(iso), code, exc)
            return m.refusal(iso, code)
        except Exception:        # noqa: BLE001 - the issuer's fault is answered 96
            log.exception("%s: issuer failed", _who(iso))
            return m.refusal(iso, m.SYSTEM_MALFUNCTION)
        response_type = m.MTYPE[m.RESPONSE_MTI[mti]]
        try:
            answer = m.response_to_iso(response_type, response, iso)
        except m.MappingError as exc:
            log.error("%s: the issuer's answer cannot go over ISO 8583: %s", _who(iso), exc)
            return m.refusal(iso, m.SYSTEM_MALFUNCTION)
        log.info("%s answered %s", _who(iso), answer.get("39"))
        return answer

    def _network(self, iso: dict):
        code = iso.get("70")
        if code not in (spec.SIGN_ON, spec.ECHO_TEST) or "11" not in iso:
            log.warning("0800 with code %s: format error", code)
            return m.refusal(iso, m.FORMAT_ERROR)
        return m.network_response(iso)


async def serve(issuer, host: str, port: int, ready=None, **options):
    """Serve until cancelled; `ready(address)` once listening (address: the bound
    host and port, the port chosen by the system when `port` is 0)."""
    server = IsoHost(issuer, **options)
    address = await server.start(host, port)
    log.info("ISO 8583 host listening on %s:%d", *address)
    if ready is not None:
        ready(address)
    try:
        await server.serve_forever()
    finally:
        await server.close()
