"""The bridge: answers the board's messages on a HostLink.

Boot handshake (HELLO -> HELLO_REPLY with the time, UTC), liveness (STATUS_REQUEST ->
STATUS both ways), and the financial requests, passed to the issuer whole: balance
(0x10 -> 0x11), purchase (0x12 -> 0x13), reversal (0x14 -> 0x15). Errors travel as data: a message the bridge cannot handle gets an
ERROR back, never silence."""
import logging
import queue
import threading
import time
from typing import Callable, Optional

from . import __version__
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
        # financial requests go to the issuer whole: it checks the MAC over these bytes
        self.raw_handlers = {p.BALANCE_REQUEST: self.on_balance_request,
                             p.PURCHASE_REQUEST: self.on_purchase_request,
                             p.REVERSAL_REQUEST: self.on_reversal_request}

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
                    if msg[0] in self.raw_handlers:
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
        if mtype in self.raw_handlers:
            self.raw_handlers[mtype](body)
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
        error = {1: code, 2: text[:60], 3: about_type}
        if trace is not None:
            error[4] = trace
        self.send(p.ERROR, error)

    # -- handlers --

    def on_hello(self, f: dict):
        version = f[1]
        if version != p.PROTOCOL_VERSION:
            self.reply_error(p.ERR_PROTOCOL_VERSION,
                             f"bridge speaks protocol {p.PROTOCOL_VERSION}, not {version}", p.HELLO)
            return
        self.board = p.named(p.HELLO, f)
        self.hello_count += 1
        log.info("board %s firmware %s connected", f.get(3), f.get(2))
        # the time in UTC only: the board shows the merchant's local time from its own
        # setting, not this PC's time zone
        self.send(p.HELLO_REPLY, {1: p.PROTOCOL_VERSION, 2: int(self.clock()),
                                  3: __version__})

    def on_status_request(self, f: dict):
        status = {1: int(time.monotonic() - self.started), 3: "ready", 6: int(self.clock())}
        if self.issuer is not None:
            status[5] = self.issuer.reachable()
        self.send(p.STATUS, status)

    def on_balance_request(self, body: bytes):
        self._to_issuer(p.BALANCE_REQUEST, p.BALANCE_RESPONSE, body,
                        lambda issuer: issuer.handle_balance_request)

    def on_purchase_request(self, body: bytes):
        self._to_issuer(p.PURCHASE_REQUEST, p.PURCHASE_RESPONSE, body,
                        lambda issuer: issuer.handle_purchase_request)

    def on_reversal_request(self, body: bytes):
        self._to_issuer(p.REVERSAL_REQUEST, p.REVERSAL_RESPONSE, body,
                        lambda issuer: issuer.handle_reversal_request)

    def _to_issuer(self, request_type: int, response_type: int, body: bytes, method):
        """The issuer's MAC'd answer, or an ERROR about `request_type` when there is
        none (docs/issuer.md, "For the bridge")."""
        from .issuer.errors import (IssuerRequestError, IssuerSecurityError,
                                    IssuerUnavailable)
        # the request's trace number goes into any ERROR about it, so that the board can
        # tell an ERROR about this request from a late one about an earlier request
        trace = _trace_of(body)

        def refuse(code, text):
            self.reply_error(code, text, request_type, trace)
        if self.issuer is None:
            refuse(p.ERR_ISSUER_UNAVAILABLE, "no issuer behind this bridge")
            return
        try:
            response = method(self.issuer)(body)
        except IssuerRequestError as exc:
            refuse(p.ERR_MALFORMED, str(exc))
        except IssuerSecurityError as exc:
            log.warning("security: %s", exc)
            refuse(p.ERR_SECURITY, "request refused: security")
        except IssuerUnavailable:
            refuse(p.ERR_ISSUER_UNAVAILABLE, "issuer unavailable")
        except Exception:  # the board must get an answer whatever broke here
            log.exception("issuer failed")
            refuse(p.ERR_INTERNAL, "issuer failed")
        else:
            self.send(response_type, response)

    def on_status(self, f: dict):
        self.board_status = p.named(p.STATUS, f)

    def on_error(self, f: dict):
        log.warning("board reports error %s: %s (about %s)", f.get(1), f.get(2),
                    p.TYPE_NAMES.get(f.get(3), f.get(3)))

    def request_status(self):
        self.send(p.STATUS_REQUEST, {})


def _trace_of(body: bytes) -> Optional[int]:
    """The trace number (key 2) of a financial request, if it can be read at all."""
    try:
        trace = p.decode_body(body).get(2)
    except (ValueError, TypeError, AttributeError):
        return None
    return trace if isinstance(trace, int) and 1 <= trace <= 999999 else None
