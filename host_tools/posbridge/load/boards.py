"""Simulated boards bridged: the terminals' requests go over the board-bridge link.

Each board has a pseudo-terminal pair of its own. The bridge opens the far end as it
opens a real board's port (ports.open_port, a HostLink, one Bridge per port, all
served by bridge.serve_boards with one issuer: the issuer in this process, or an ISO
8583 host through the bridge's upstream client). The board's end speaks the same link:
the protocol is symmetric (docs/protocol.md, "Link"), so a HostLink over the pty master
is the board's link. Each board says HELLO and waits for HELLO_REPLY before its first
request, as the firmware does at boot. A request's answer is the response of its type,
or the ERROR about its trace, within `timeout`; anything else is a TargetError, as the
board would count it (no answer, an ERROR).
"""
import fcntl
import os
import select
import struct
import termios
import threading
import time
import tty

from ..bridge import serve_boards
from ..issuer.messages import ROUTES
from ..link import protocol as p
from ..link.host_link import HostLink, LinkClosed, LinkError
from ..ports import open_port
from .targets import TargetError

FIRMWARE = "load"          # the firmware version the simulated boards report


class _PtyMaster:
    """The board's end of a pseudo-terminal pair, as much of a pyserial port as
    HostLink uses (read, in_waiting, write, flush)."""

    def __init__(self, fd: int):
        self.fd = fd

    @property
    def in_waiting(self) -> int:
        return struct.unpack("I", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0" * 4))[0]

    def read(self, size: int = 1) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], 0.05)
        return os.read(self.fd, max(size, 512)) if ready else b""

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        return len(data)

    def flush(self):
        pass


class _Board:
    """One simulated board's link: what the terminal `index` sends through."""

    def __init__(self, link: HostLink, timeout: float):
        self.link = link
        self.timeout = timeout

    def hello(self, terminal_id: str):
        body = p.encode_body(p.build("hello", protocol=p.PROTOCOL_VERSION,
                                     firmware=FIRMWARE, terminal_id=terminal_id))
        self._exchange(p.HELLO, body, p.HELLO_REPLY)

    def send(self, mtype: int, body: bytes) -> bytes:
        return self._exchange(mtype, body, ROUTES[mtype][0])

    def _exchange(self, mtype: int, body: bytes, answer_type: int) -> bytes:
        try:
            self.link.send(mtype, body)
        except LinkClosed:
            raise TargetError("link closed") from None
        except LinkError:
            raise TargetError("link: not acknowledged") from None
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            try:
                msg = self.link.receive(timeout=left) if left > 0 else None
            except LinkClosed:
                raise TargetError("link closed") from None
            if msg is None:
                raise TargetError("timeout")
            kind, answer = msg
            if kind == answer_type:
                return answer
            if kind == p.ERROR:
                error = _error_about(answer, mtype, body)
                if error is not None:
                    raise TargetError(f"bridge ERROR {error}")
            # a late answer to an earlier request, a STATUS_REQUEST: not this one's


def _error_about(answer: bytes, mtype: int, request: bytes):
    """The code of an ERROR about this request (its type and trace), else None."""
    try:
        error = p.parse("error", p.decode_body(answer))
        trace = None
        if mtype in p.RULES and error.get("trace") is not None:
            trace = p.field_or_none(p.RULES[mtype][0], "trace", p.decode_body(request))
    except (ValueError, KeyError, TypeError):
        return "unreadable"
    if error["about_type"] != mtype or trace != error.get("trace"):
        return None
    return error["code"]


class BridgeTarget:
    """A bridge in this process with a simulated board on a pty for each terminal, its
    issuer `issuer` (closed with the target). connect(fleet) makes the boards."""
    name = "bridge"

    def __init__(self, issuer, *, timeout: float = 10.0):
        self.issuer = issuer
        self.timeout = timeout
        self._boards: "list[_Board]" = []
        self._closing: list = []            # what close() undoes, last first
        self._stop = threading.Event()
        self._bridge = None

    def connect(self, fleet):
        """A board for each terminal of `fleet`, bridged, each past its HELLO."""
        try:
            links = []
            for terminal in fleet:
                master, slave = os.openpty()
                self._closing += [lambda fd=master: os.close(fd),
                                  lambda fd=slave: os.close(fd)]
                tty.setraw(master)
                tty.setraw(slave)
                path = os.ttyname(slave)
                port = open_port(path)
                self._closing.append(port.close)
                bridge_link = HostLink(port).start()
                self._closing.append(bridge_link.close)
                links.append((path, bridge_link))
                board_link = HostLink(_PtyMaster(master)).start()
                self._closing.append(board_link.close)
                self._boards.append(_Board(board_link, self.timeout))
            self._bridge = threading.Thread(
                target=serve_boards, args=(links, self.issuer, self._stop, None),
                daemon=True, name="load-bridge")
            self._bridge.start()
            for board, terminal in zip(self._boards, fleet):
                board.hello(terminal.terminal_id)
        except BaseException:
            self.close()
            raise

    def for_terminal(self, index: int) -> _Board:
        return self._boards[index]

    @property
    def conflicts(self):
        """Transactions the in-process issuer ran again (None behind an ISO 8583 host)."""
        ledger = getattr(self.issuer, "ledger", None)
        return getattr(ledger, "conflicts", None)

    def close(self):
        self._stop.set()
        if self._bridge is not None:
            self._bridge.join(timeout=5)
            self._bridge = None
        # the links stop before their ports and fds close under their reader threads
        for undo in reversed(self._closing):
            try:
                undo()
            except OSError:
                pass
        self._closing.clear()
        self._boards.clear()
        if self.issuer is not None:
            self.issuer.close()
            self.issuer = None
