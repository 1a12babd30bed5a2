"""The bridge: answers the board's messages on a HostLink.

Boot handshake (HELLO -> HELLO_REPLY with the time, UTC), liveness (STATUS_REQUEST ->
STATUS both ways), and the financial requests, passed to the issuer whole
(`issuer.handle(type, body)`), its answer sent back as the type the issuer's ROUTES
table gives: balance (0x10 -> 0x11), purchase (0x12 -> 0x13), reversal (0x14 -> 0x15).
The issuer is the in-process Issuer or an ISO 8583 host behind upstream.Upstream, which
raises the same errors. Bodies are built and read by field name through the schema
(link/protocol.py). Errors
travel as data: a message the bridge cannot handle gets an ERROR back, never silence."""
import logging
import queue
import threading
import time
from typing import Callable, Optional

from . import __version__
from .issuer.errors import (IssuerInternalError, IssuerRequestError, IssuerSecurityError,
                            IssuerUnavailable)
from .issuer.messages import ROUTES
from .link import protocol as p
from .link.host_link import HostLink, LinkClosed, LinkError

log = logging.getLogger("posbridge")


class Bridge:
    def __init__(self, link: HostLink, clock: Callable[[], float] = time.time, issuer=None):
        self.link = link
        self.issuer = issuer
        self.clock = clock
        self.started = time.monotonic()
        self.board: dict = {}          # what the last HELLO said
        self.board_status: dict = {}   # the last STATUS from the board
        self.hello_count = 0
        self.handlers = {
            p.HELLO: self.on_hello,
            p.STATUS_REQUEST: self.on_status_request,
            p.STATUS: self.on_status,
            p.ERROR: self.on_error,
        }

    def serve(self, stop: threading.Event, status_interval: Optional[float] = None):
        """Answer messages until stop is set or the port goes away (LinkClosed).

        Financial requests go to the issuer on a worker thread, one at a time in the
        order they came: a slow issuer must not hold up HELLO and STATUS, or the board
        would take the bridge for gone while its request is being answered."""
        requests: queue.Queue = queue.Queue()
        closed = []
        worker = threading.Thread(target=self._issuer_worker, args=(requests, closed),
                                  daemon=True)
        worker.start()
        next_status = time.monotonic() + status_interval if status_interval else None
        try:
            while not stop.is_set():
                if closed:
                    raise closed[0]
                msg = self.link.receive(timeout=0.1)
                if msg is not None:
                    if msg[0] in ROUTES:
                        requests.put(msg)
                    else:
                        self.handle(*msg)
                if next_status is not None and time.monotonic() >= next_status:
                    next_status = time.monotonic() + status_interval
                    self.request_status()
        finally:
            requests.put(None)
            worker.join(timeout=5)

    def _issuer_worker(self, requests: queue.Queue, closed: list):
        while True:
            msg = requests.get()
            if msg is None:
                return
            try:
                self.handle(*msg)
            except LinkClosed as exc:
                closed.append(exc)
                return

    def handle(self, mtype: int, body: bytes):
        if mtype in ROUTES:
            # to the issuer whole: it checks the MAC over these very bytes
            self._to_issuer(mtype, body)
            return
        handler = self.handlers.get(mtype)
        try:
            fields = p.decode_body(body)
            if handler is None:
                self.reply_error(p.ERR_UNSUPPORTED_TYPE, f"unsupported message type {mtype:#04x}",
                                 mtype)
                return
            handler(fields)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("malformed %s: %s", p.TYPE_NAMES.get(mtype, hex(mtype)), exc)
            if mtype != p.ERROR:  # never answer an ERROR with an ERROR
                self.reply_error(p.ERR_MALFORMED, f"malformed message: {exc}", mtype)

    def send(self, mtype: int, fields):
        """Send a message: fields as a dict, or a body already encoded (and MAC'd)."""
        body = fields if isinstance(fields, bytes) else p.encode_body(fields)
        try:
            self.link.send(mtype, body)
        except LinkClosed:
            raise
        except LinkError as exc:
            log.error("board did not take %s: %s", p.TYPE_NAMES.get(mtype, mtype), exc)

    def reply_error(self, code: int, text: str, about_type: int, trace: Optional[int] = None):
        # the schema bounds the text in bytes: cut there, never inside a character
        text = text.encode()[:60].decode("utf-8", "ignore")
        self.send(p.ERROR, p.build("error", code=code, text=text, about_type=about_type,
                                   trace=trace))

    # -- handlers --

    def on_hello(self, f: dict):
        version = f.get(p.KEYS["hello"]["protocol"])
        if version is not None and version != p.PROTOCOL_VERSION:
            # the version alone decides: another version's HELLO may differ in any field
            self.reply_error(p.ERR_PROTOCOL_VERSION,
                             f"bridge speaks protocol {p.PROTOCOL_VERSION}, not {version}", p.HELLO)
            return
        hello = p.parse("hello", f)
        self.board = hello
        self.hello_count += 1
        log.info("board %s firmware %s connected", hello["terminal_id"], hello["firmware"])
        # the time in UTC only: the board shows the merchant's local time from its own
        # setting, not this PC's time zone
        self.send(p.HELLO_REPLY, p.build("hello-reply", protocol=p.PROTOCOL_VERSION,
                                         time=int(self.clock()), bridge=__version__))

    def on_status_request(self, f: dict):
        p.parse("status-request", f)
        online = self.issuer.reachable() if self.issuer is not None else None
        self.send(p.STATUS, p.build("bridge-status", uptime_s=int(time.monotonic() - self.started),
                                    state="ready", issuer_online=online,
                                    time=int(self.clock())))

    def _to_issuer(self, mtype: int, body: bytes):
        """The issuer's MAC'd answer, of the type ROUTES gives, or an ERROR about the
        request when there is none (docs/issuer.md, "For the bridge")."""
        response_type, _ = ROUTES[mtype]
        # the request's trace number goes into any ERROR about it, so that the board can
        # tell an ERROR about this request from a late one about an earlier request
        trace = _trace_of(mtype, body)

        def refuse(code, text):
            self.reply_error(code, text, mtype, trace)
        if self.issuer is None:
            refuse(p.ERR_ISSUER_UNAVAILABLE, "no issuer behind this bridge")
            return
        try:
            response = self.issuer.handle(mtype, body)
        except IssuerRequestError as exc:
            refuse(p.ERR_MALFORMED, str(exc))
        except IssuerSecurityError as exc:
            log.warning("security: %s", exc)
            refuse(p.ERR_SECURITY, "request refused: security")
        except IssuerUnavailable:
            refuse(p.ERR_ISSUER_UNAVAILABLE, "issuer unavailable")
        except IssuerInternalError as exc:
            log.error("issuer failed: %s", exc)
            refuse(p.ERR_INTERNAL, "issuer failed")
        except Exception:  # the board must get an answer whatever broke here
            log.exception("issuer failed")
            refuse(p.ERR_INTERNAL, "issuer failed")
        else:
            self.send(response_type, response)

    def on_status(self, f: dict):
        self.board_status = p.parse("board-status", f)

    def on_error(self, f: dict):
        error = p.parse("error", f)
        log.warning("board reports error %s: %s (about %s)", error["code"], error["text"],
                    p.TYPE_NAMES.get(error["about_type"], error["about_type"]))

    def request_status(self):
        self.send(p.STATUS_REQUEST, p.build("status-request"))


def serve_boards(links, issuer, stop, status_interval):
    """A Bridge for each board's link, each on its own thread, until `stop` or until
    every board is lost; the reasons boards were lost."""
    lost = []

    def run(port, link):
        try:
            Bridge(link, issuer=issuer).serve(stop, status_interval)
        except LinkClosed as exc:
            log.error("lost the board on %s: %s", port, exc)
            lost.append(exc)
    threads = [threading.Thread(target=run, args=pl, daemon=True) for pl in links]
    for thread in threads:
        thread.start()
    while not stop.is_set() and any(t.is_alive() for t in threads):
        stop.wait(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=2)
    return lost


def _trace_of(mtype: int, body: bytes) -> Optional[int]:
    """The trace number of a financial request, if it can be read at all."""
    try:
        fields = p.decode_body(body)
    except ValueError:
        return None
    return p.field_or_none(p.RULES[mtype][0], "trace", fields)
