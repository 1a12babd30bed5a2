"""The frame monitor on a real exchange: a board (played by this test on a
pseudo-terminal) sends a balance inquiry, a purchase and its reversal through the
bridge, which talks ISO 8583 to `posbridge issuer serve`, with echo tests between; the
bridge's tap publishes both links and the monitor prints them, fields named, nothing
sensitive in clear. The bridge goes on answering whatever its monitors do: connect,
leave, or stop reading."""
import io
import os
import pty
import socket
import threading
import time
import tty

import pytest
from rich.console import Console

from posbridge import monitor as frame_monitor
from posbridge.bridge import Bridge
from posbridge.link import cbor_profile
from posbridge.link import protocol as p
from posbridge.link.framing import FrameSplitter, encode_frame
from posbridge.link.host_link import HostLink
from posbridge.ports import open_port
from posbridge.tap import Tap
from posbridge.upstream import Upstream

from tests.iso8583_net import (HostProcess, RunningHost, line_with, start_posbridge,
                               stop_process)

LI_WEI = "4761730000000011"


class Board:
    """The board's end of the serial link, as firmware/link.py plays it: a frame out,
    the bridge's ACK and answer in, the answer acknowledged."""

    def __init__(self, fd):
        self.fd = fd
        self.splitter = FrameSplitter()
        self.seq = 0
        self.pending = []

    def send(self, mtype, body):
        self.seq = (self.seq + 1) & 0xFF
        flags = p.FLAG_SYN if self.seq == 1 else 0
        os.write(self.fd, encode_frame(bytes((p.PROTOCOL_VERSION, mtype, self.seq, flags))
                                       + body))

    def answer(self, seconds=15.0):
        """The next message of the bridge that is not an ACK, acknowledged."""
        stop = threading.Event()
        for _ in range(int(seconds / 0.02)):
            while self.pending:
                payload = self.pending.pop(0)
                if payload[1] != p.TYPE_ACK:
                    os.write(self.fd, encode_frame(bytes((p.PROTOCOL_VERSION, p.TYPE_ACK,
                                                          payload[2], 0))))
                    return payload[1], payload[p.HEADER_SIZE:]
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                stop.wait(0.02)
                continue
            self.pending.extend(self.splitter.feed(data))
        raise AssertionError("no answer from the bridge")

    def exchange(self, mtype, body):
        self.send(mtype, body)
        return self.answer()


class Watcher:
    """`posbridge monitor` in a thread of this process, its output in a string."""

    def __init__(self, path):
        self.out = io.StringIO()
        self.stop = threading.Event()
        console = Console(file=self.out, width=200, color_system=None)
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(path, console), daemon=True)
        self.thread.start()

    def _run(self, path, console):
        self.result = frame_monitor.run(path, console, self.stop, once=True, acks=True)

    def text(self):
        return self.out.getvalue()

    def wait_for(self, fragment, seconds=10.0):
        for _ in range(int(seconds / 0.02)):
            if fragment in self.text():
                return True
            self.stop.wait(0.02)
        return False

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def rig(issuer, tmp_path):
    """The host, a bridge with a tap in front of it, and the board's end of its link."""
    host = RunningHost(issuer)
    tap = Tap(str(tmp_path / "tap.sock"), capacity=64).start()
    upstream = Upstream("127.0.0.1", host.port, timeout=5.0, echo_interval=0.3,
                        tap=tap.iso(f"127.0.0.1:{host.port}")).start()
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)
    port = open_port(os.ttyname(slave))
    link = HostLink(port, wire_tap=tap.serial("board0")).start()
    stop = threading.Event()
    bridge = threading.Thread(target=Bridge(link, issuer=upstream).serve, args=(stop,),
                              daemon=True)
    bridge.start()
    for _ in range(500):
        if upstream.reachable():
            break
        stop.wait(0.02)
    assert upstream.reachable(), "no sign-on"
    yield Board(master), tap, upstream
    stop.set()
    bridge.join(timeout=5)
    link.close()
    port.close()
    for fd in (master, slave):
        os.close(fd)
    upstream.close()
    tap.close()
    host.close()


def _exchange(board, terminal):
    """Balance, purchase, reversal through the bridge, every answer checked by the
    board's rules; the request bodies sent."""
    sent = []
    body, pending = terminal.request(LI_WEI)
    mtype, answer = board.exchange(p.BALANCE_REQUEST, body)
    assert mtype == p.BALANCE_RESPONSE and terminal.check(answer, pending)[3] == "00"
    sent.append(body)
    body, purchase = terminal.purchase(LI_WEI, 4200)
    mtype, answer = board.exchange(p.PURCHASE_REQUEST, body)
    assert mtype == p.PURCHASE_RESPONSE and terminal.check(answer, purchase)[3] == "00"
    sent.append(body)
    body, pending = terminal.reversal(purchase)
    mtype, answer = board.exchange(p.REVERSAL_REQUEST, body)
    assert mtype == p.REVERSAL_RESPONSE and terminal.check(answer, pending)[3] == "00"
    sent.append(body)
    return sent


def _secrets(bodies):
    """What must never show: the PAN, and each PIN block, in any case of hex."""
    out = [LI_WEI]
    for body in bodies:
        fields = cbor_profile.decode(body)
        if 5 in fields:
            out += [fields[5].hex(), fields[5].hex().upper()]
    return out


def test_the_monitor_shows_a_real_exchange_named_and_masked(rig, terminal):
    board, tap, upstream = rig
    watcher = Watcher(tap.path)
    try:
        assert watcher.wait_for("monitoring the bridge's tap")
        for _ in range(250):
            if tap.monitors:
                break
            watcher.stop.wait(0.02)
        sent = _exchange(board, terminal)
        echoes = upstream.echoes_sent
        assert watcher.wait_for("301 echo test", seconds=5), "no echo test seen"
        assert upstream.echoes_sent > echoes or echoes
        assert watcher.wait_for("0410 reversal response")
    finally:
        watcher.close()
    text = watcher.text()
    # the board link, named by the schema
    for fragment in ("board0 board>bridge BALANCE_REQUEST", "bridge>board BALANCE_RESPONSE",
                     "PURCHASE_REQUEST", "PURCHASE_RESPONSE", "REVERSAL_REQUEST",
                     "REVERSAL_RESPONSE", "card = 'card 476173******0011'",
                     "pin_block = '<16 bytes>'", "amount = 4200", "response_code = '00'",
                     "ACK seq="):
        assert fragment in text, fragment
    # the ISO 8583 link, field by field
    for fragment in ("bridge>host 0100 balance inquiry", "host>bridge 0110 balance inquiry "
                     "response", "0200 purchase", "0210 purchase response", "0400 reversal",
                     "0800 network management", "0810 network management response",
                     "2 Primary account number = 476173******0011",
                     "52 PIN data (ISO 9564-1 format 4, AES) = <16 bytes>",
                     "4 Amount, transaction = 4200", "39 Response code = 00",
                     "14 Date, expiration (YYMM) = <hidden>", "90 Original data elements = "
                     "MTI 0200 STAN", "54 Additional amounts = ledger="):
        assert fragment in text, fragment
    for secret in _secrets(sent):
        assert secret not in text
    assert "3012" not in text              # the card's expiry
    assert watcher.result.counts["garbled"] == 0


def test_garbage_on_the_link_shows_as_garbled_and_the_exchange_goes_on(rig, terminal):
    board, tap, upstream = rig
    watcher = Watcher(tap.path)
    try:
        assert watcher.wait_for("monitoring the bridge's tap")
        for _ in range(250):
            if tap.monitors:
                break
            watcher.stop.wait(0.02)
        frame = encode_frame(bytes((p.PROTOCOL_VERSION, p.HELLO, 77, 1)) + b"\xa0")
        os.write(board.fd, frame[:-3] + b"\x55" + frame[-2:])     # CRC broken
        os.write(board.fd, b"\x00" + LI_WEI.encode() + b"\x00")  # not a frame at all
        sent = _exchange(board, terminal)
        assert watcher.wait_for("REVERSAL_RESPONSE")
    finally:
        watcher.close()
    text = watcher.text()
    assert "garbled frame: CRC mismatch" in text
    assert watcher.result.counts["garbled"] == 2
    for secret in _secrets(sent):
        assert secret not in text


def test_the_bridge_never_waits_for_a_monitor(rig, terminal):
    """A monitor that connects and never reads, one that leaves half-way, one that comes
    late: the exchange goes through each time, and the tap counts what it dropped."""
    board, tap, upstream = rig
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    stalled.connect(tap.path)
    leaving = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leaving.connect(tap.path)
    for _ in range(250):
        if tap.monitors == 2:
            break
        threading.Event().wait(0.02)
    assert tap.monitors == 2
    try:
        _exchange(board, terminal)
        # far more than the socket's buffers and the queue hold, from another thread,
        # while the board goes on: publishing never waits for the stalled monitor
        flood = threading.Thread(target=lambda: [tap.publish("serial", "flood", "in",
                                                             bytes(1000))
                                                 for _ in range(5000)], daemon=True)
        flood.start()
        _exchange(board, terminal)
        flood.join(timeout=60)
        assert not flood.is_alive()
        assert tap.dropped > 0         # the stalled ones' records, dropped and counted
        leaving.close()
        _exchange(board, terminal)
        late = Watcher(tap.path)
        try:
            assert late.wait_for("monitoring the bridge's tap")
            for _ in range(250):
                if tap.monitors >= 2:
                    break
                late.stop.wait(0.02)
            _exchange(board, terminal)
            assert late.wait_for("REVERSAL_RESPONSE")
        finally:
            late.close()
    finally:
        stalled.close()


def test_the_commands_serve_tap_and_monitor(db_path, terminal, tmp_path):
    """As a person runs them: `posbridge issuer serve`, `posbridge serve --tap` and
    `posbridge monitor --once` as processes of their own; a balance inquiry through
    them shows on the monitor, masked, and the monitor ends with the bridge."""
    host = HostProcess(db_path)
    master, slave = pty.openpty()
    tty.setraw(master)
    os.set_blocking(master, False)
    tap = tmp_path / "tap.sock"
    bridge = monitor = None
    try:
        bridge = start_posbridge(["serve", "--port", os.ttyname(slave), "--upstream",
                                  f"iso8583://127.0.0.1:{host.port}", "--status-interval",
                                  "0", "--tap", tap], tmp_path)
        line_with(bridge, "signed on to the issuer host")
        monitor = start_posbridge(["monitor", "--once", "--tap", tap], tmp_path)
        line_with(monitor, "monitoring the bridge's tap")
        line_with(bridge, "monitor connected to the tap")
        terminal.now = int(time.time())      # the host process's clock is the real one
        body, pending = terminal.request(LI_WEI)
        mtype, answer = Board(master).exchange(p.BALANCE_REQUEST, body)
        assert mtype == p.BALANCE_RESPONSE and terminal.check(answer, pending)[3] == "00"
        assert stop_process(bridge) == 0
        said, _ = monitor.communicate(timeout=20)      # all it printed, to the tap's end
        assert monitor.returncode == 0 and "the bridge's tap closed" in said
        for fragment in ("board>bridge BALANCE_REQUEST", "bridge>host 0100 balance inquiry",
                         "host>bridge 0110", "bridge>board BALANCE_RESPONSE",
                         "card = 'card 476173******0011'", "ISO 8583 messages"):
            assert fragment in said, fragment
        for secret in _secrets([body]):
            assert secret not in said
        assert not tap.exists()
    finally:
        for proc in (monitor, bridge):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        os.close(master)
        os.close(slave)
        host.close()
