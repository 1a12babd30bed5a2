"""HostLink (posbridge/link/host_link.py) over mocked serial ports, scripted byte by byte, and
against the board's own Link (firmware/link.py) through a noisy in-memory wire.

docs/protocol.md, "Link": 4-byte header (version, type, seq, flags), ACK = type 0,
stop-and-wait with a bounded number of retries, duplicates dropped by (seq, SYN).
No test here asserts how long anything takes; waits are bounded only so that a broken
link fails the test instead of hanging it.
"""
import errno
import importlib.util
import random
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cpython_shims import install as install_cpython_shims
import serial

from posbridge.link.framing import FrameSplitter, encode_frame
from posbridge.link.host_link import HostLink, LinkClosed, LinkError, LinkFailed, MAX_BODY
from posbridge.link.protocol import FLAG_SYN, PROTOCOL_VERSION, TYPE_ACK

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
WAIT = 5.0  # seconds: the most any test waits for something that should happen at once


def frame(mtype, seq, body=b"", flags=0, version=PROTOCOL_VERSION):
    return encode_frame(bytes((version, mtype, seq, flags)) + body)


def ack(seq):
    return frame(TYPE_ACK, seq)


def parse(data: bytes):
    """(version, type, seq, flags, body) of every good frame in data."""
    return [(p[0], p[1], p[2], p[3], p[4:]) for p in FrameSplitter().feed(data)]


def wait_until(predicate, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.002)


class ScriptedPort:
    """A pyserial port stand-in. What the "board" says is handed to the reader one byte
    per read() (a read with nothing waiting returns b"" after a short wait, like a port
    with a timeout); what the host writes is kept, and `answer` may reply to it."""

    def __init__(self, answer=None):
        self.answer = answer
        self._rx = bytearray()
        self._cond = threading.Condition()
        self.writes = []
        self.read_calls = 0

    @property
    def in_waiting(self):
        with self._cond:
            return len(self._rx)

    def feed(self, data: bytes):
        with self._cond:
            self._rx.extend(data)
            self._cond.notify_all()

    def read(self, size=1):
        with self._cond:
            self.read_calls += 1
            if not self._rx:
                self._cond.wait(0.01)
            out = bytes(self._rx[:1])
            del self._rx[:1]
            return out

    def write(self, data):
        self.writes.append(bytes(data))
        if self.answer is not None:
            reply = self.answer(bytes(data))
            if reply:
                self.feed(reply)
        return len(data)

    def flush(self):
        pass

    def frames_written(self):
        return parse(b"".join(self.writes))

    def acks_written(self):
        return [seq for _, mtype, seq, _, _ in self.frames_written() if mtype == TYPE_ACK]


def acknowledge_everything(data):
    return b"".join(ack(seq) for _, mtype, seq, _, _ in parse(data) if mtype != TYPE_ACK)


def answer_after(n_ignored, answer=acknowledge_everything):
    """An answer function that stays silent for the first n writes."""
    count = [0]

    def answer_fn(data):
        count[0] += 1
        return answer(data) if count[0] > n_ignored else b""
    return answer_fn


@pytest.fixture
def links():
    """Start HostLinks and close every one of them after the test."""
    started = []

    def start(port, **kwargs):
        link = HostLink(port, **kwargs).start()
        started.append(link)
        return link
    yield start
    for link in started:
        link.close()


# ---- receiving from the board ---------------------------------------------------

def test_board_message_is_acked_and_delivered(links):
    port = ScriptedPort()
    link = links(port)
    port.feed(frame(0x04, seq=7, body=b"\xa1\x01\x18\x2a", flags=FLAG_SYN))
    assert link.receive(timeout=WAIT) == (0x04, b"\xa1\x01\x18\x2a")
    wait_until(lambda: port.acks_written() == [7], "ACK for seq 7")
    assert port.frames_written() == [(PROTOCOL_VERSION, TYPE_ACK, 7, 0, b"")]
    assert link.counters()["rx"] == 1
    assert port.read_calls > len(frame(0x04, 7, b"\xa1\x01\x18\x2a")), "read byte by byte"


def test_message_is_delivered_once_when_followed_by_nothing(links):
    port = ScriptedPort()
    link = links(port)
    port.feed(frame(0x04, seq=1, body=b"\xa0"))
    assert link.receive(timeout=WAIT) == (0x04, b"\xa0")
    assert link.receive(timeout=0.05) is None


# first frame, second frame, delivered
SESSIONS = [
    ("retransmission-is-a-duplicate", (9, FLAG_SYN), (9, FLAG_SYN), False),
    ("retransmission-without-syn-is-a-duplicate", (9, 0), (9, 0), False),
    ("next-seq-is-new", (9, 0), (10, 0), True),
    ("board-reboot-same-seq-with-syn-is-new", (9, 0), (9, FLAG_SYN), True),
    ("seq-wraps-from-255-to-0", (255, 0), (0, 0), True),
]


@pytest.mark.parametrize("first, second, delivered", [s[1:] for s in SESSIONS],
                         ids=[s[0] for s in SESSIONS])
def test_duplicates_are_acked_again_but_delivered_once(links, mocker, first, second, delivered):
    port = ScriptedPort()
    frame_log = mocker.Mock()
    link = links(port, frame_log=frame_log)
    port.feed(frame(0x03, first[0], b"\xa0", first[1]))
    port.feed(frame(0x03, second[0], b"\xa0", second[1]))
    port.feed(frame(0x0F, 42, b"\xa0"))  # a marker: everything before it has been read
    got = [link.receive(timeout=WAIT) for _ in range(3 if delivered else 2)]
    assert got[-1] == (0x0F, b"\xa0")
    assert got[:-1] == [(0x03, b"\xa0")] * (2 if delivered else 1)
    wait_until(lambda: len(port.acks_written()) == 3, "three ACKs")
    assert port.acks_written() == [first[0], second[0], 42], "every copy is acknowledged"
    assert link.counters().get("duplicates", 0) == (0 if delivered else 1)
    assert [c.args[0] for c in frame_log.call_args_list] == ["rx"] * len(got)


@pytest.mark.parametrize("payload", [
    bytes((0, 0x04, 5, 0)) + b"\xa0",      # version 0
    bytes((2, 0x04, 5, 0)) + b"\xa0",      # version 2
    bytes((0xFF, 0x04, 5, 0)),             # version 255
    bytes((PROTOCOL_VERSION, 0x04, 5)),    # header cut short
    bytes((PROTOCOL_VERSION,)),            # one byte
], ids=["version-0", "version-2", "version-255", "3-byte-header", "1-byte"])
def test_bad_header_is_counted_and_ignored_unanswered(links, payload):
    port = ScriptedPort()
    link = links(port)
    port.feed(encode_frame(payload))
    port.feed(frame(0x04, seq=6, body=b"\xa0"))
    assert link.receive(timeout=WAIT) == (0x04, b"\xa0"), "the link goes on after it"
    wait_until(lambda: port.acks_written(), "ACK for the good frame")
    assert port.acks_written() == [6], "the bad frame is not acknowledged"
    assert link.counters()["bad_header"] == 1
    assert link.counters()["rx"] == 1


NOISE = [
    ("crc_errors", lambda f: f[:3] + bytes((f[3] ^ 0x10,)) + f[4:]),
    ("framing_errors", lambda f: b"\x00\x09\x41\x00"),
    ("oversize", lambda f: b"\x00" + b"\x01" * 700),
]
LINE_NOISE_COUNTERS = [n[0] for n in NOISE]


@pytest.mark.parametrize("counter, damage", NOISE,
                         ids=[n[0] for n in NOISE])
def test_line_noise_is_counted_and_the_next_frame_gets_through(links, counter, damage):
    port = ScriptedPort()
    link = links(port)
    good = frame(0x04, seq=3, body=b"\xa0\x41")
    port.feed(damage(good))
    port.feed(good)
    assert link.receive(timeout=WAIT) == (0x04, b"\xa0\x41")
    counters = link.counters()
    assert counters[counter] == 1, counters
    assert sum(counters[k] for k in LINE_NOISE_COUNTERS) == 1, counters


# ---- sending to the board ---------------------------------------------------------

def test_send_returns_when_the_ack_arrives(links):
    port = ScriptedPort(answer=acknowledge_everything)
    link = links(port, timeout=WAIT, retries=0)
    link.send(0x03, b"\xa0")
    [(version, mtype, seq, flags, body)] = parse(port.writes[0])
    assert (version, mtype, flags, body) == (PROTOCOL_VERSION, 0x03, FLAG_SYN, b"\xa0")
    assert len(port.writes) == 1
    assert link.counters()["tx"] == 1
    assert link.counters().get("retransmits", 0) == 0


def test_send_retransmits_the_same_frame_until_acked(links):
    port = ScriptedPort(answer=answer_after(2))
    link = links(port, timeout=0.05, retries=5)
    link.send(0x03, b"\xa0")
    # two tries go unanswered; a slow machine may add a third before the ACK is read
    assert len(port.writes) >= 3
    assert len(set(port.writes)) == 1, "same seq, same SYN, same body on every try"
    assert link.counters()["retransmits"] == len(port.writes) - 1


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_send_raises_link_failed_when_the_board_stops_answering(links, retries):
    port = ScriptedPort()  # says nothing
    link = links(port, timeout=0.01, retries=retries)
    with pytest.raises(LinkFailed, match=rf"message type 0x04 after {retries + 1} tries"):
        link.send(0x04, b"\xa0")
    assert len(port.writes) == retries + 1
    assert len(set(port.writes)) == 1, "every try is the same frame"
    counters = link.counters()
    assert (counters["tx"], counters.get("retransmits", 0), counters["failures"]) == \
        (1, retries, 1)


def test_ack_for_another_seq_does_not_complete_send(links):
    def wrong_seq(data):
        return b"".join(ack((seq + 1) & 0xFF) for _, _, seq, _, _ in parse(data))
    port = ScriptedPort(answer=wrong_seq)
    link = links(port, timeout=0.01, retries=2)
    with pytest.raises(LinkFailed):
        link.send(0x03, b"\xa0")
    assert len(port.writes) == 3


def test_first_frame_has_syn_later_ones_not_and_seq_counts_up_through_255(links, mocker):
    mocker.patch("posbridge.link.host_link.random.randrange", return_value=254)
    port = ScriptedPort(answer=acknowledge_everything)
    link = links(port, timeout=WAIT)
    for i in range(4):
        link.send(0x03, bytes((0xa0,)))
    headers = [(seq, flags) for _, _, seq, flags, _ in port.frames_written()]
    assert headers == [(254, FLAG_SYN), (255, 0), (0, 0), (1, 0)]


def test_syn_stays_on_every_try_until_a_message_is_acknowledged(links):
    answers = {"on": False}

    def switchable(data):
        return acknowledge_everything(data) if answers["on"] else b""
    port = ScriptedPort(answer=switchable)
    link = links(port, timeout=0.01, retries=1)
    with pytest.raises(LinkFailed):
        link.send(0x01, b"\xa0")
    answers["on"] = True
    link.timeout = WAIT  # from here on every message is answered: one try each
    link.send(0x01, b"\xa0")
    link.send(0x03, b"\xa0")
    sent = [(seq, flags) for _, _, seq, flags, _ in port.frames_written()]
    s = sent[0][0]
    assert sent == [(s, FLAG_SYN), (s, FLAG_SYN),                # the failed message
                    ((s + 1) & 0xFF, FLAG_SYN),                  # a fresh seq, still SYN
                    ((s + 2) & 0xFF, 0)]                         # SYN ends once acked


@pytest.mark.parametrize("mtype, body, message", [
    (TYPE_ACK, b"", "bad message type 0"),
    (256, b"", "bad message type 256"),
    (-1, b"", "bad message type -1"),
    (0x03, bytes(MAX_BODY + 1), f"{MAX_BODY + 1} bytes exceeds {MAX_BODY}"),
], ids=["ack-type", "type-256", "negative-type", "body-too-long"])
def test_send_refuses_what_cannot_be_sent(links, mtype, body, message):
    port = ScriptedPort()
    link = links(port)
    with pytest.raises(LinkError, match=message):
        link.send(mtype, body)
    assert port.writes == []


def test_largest_body_is_sent(links):
    port = ScriptedPort(answer=acknowledge_everything)
    link = links(port, timeout=WAIT)
    body = bytes(i % 255 + 1 for i in range(MAX_BODY))
    link.send(0x03, body)
    assert port.frames_written()[0][4] == body


# ---- a port that goes away -------------------------------------------------------

@pytest.mark.parametrize("error, reason", [
    (serial.SerialException("device reports readiness to read but returned no data "
                            "(device disconnected or multiple access on port?)"),
     "port closed: device reports readiness to read but returned no data"),
    (OSError(errno.EIO, "Input/output error"), r"port closed: \[Errno 5\] Input/output error"),
    (TypeError("'NoneType' object cannot be interpreted as an integer"),
     "port closed: 'NoneType' object"),
], ids=["unplugged", "pty-eio", "closed-pyserial-port"])
def test_port_error_makes_receive_raise_link_closed_with_the_reason(links, mocker, error, reason):
    port = mocker.Mock(spec=serial.Serial)
    port.in_waiting = 0
    port.read.side_effect = error
    link = links(port)
    with pytest.raises(LinkClosed, match=reason):
        link.receive(timeout=WAIT)
    with pytest.raises(LinkClosed, match=reason):  # and keeps saying so
        link.receive(timeout=WAIT)
    with pytest.raises(LinkClosed, match=reason):
        link.send(0x03, b"\xa0")
    assert link.closed_reason.startswith("port closed: ")


def test_messages_read_before_the_port_failed_are_still_delivered(links, mocker):
    port = mocker.Mock(spec=serial.Serial)
    port.in_waiting = 0
    port.read.side_effect = [frame(0x04, 1, b"\xa0"), frame(0x04, 2, b"\xa1\x01\x02"),
                             serial.SerialException("gone")]
    link = links(port)
    assert link.receive(timeout=WAIT) == (0x04, b"\xa0")
    assert link.receive(timeout=WAIT) == (0x04, b"\xa1\x01\x02")
    with pytest.raises(LinkClosed, match="port closed: gone"):
        link.receive(timeout=WAIT)
    assert [parse(c.args[0])[0][2] for c in port.write.call_args_list] == [1, 2]


def test_write_failure_turns_into_link_closed(links, mocker):
    port = mocker.Mock(spec=serial.Serial)
    port.in_waiting = 0
    port.read.return_value = b""
    port.write.side_effect = serial.SerialException("write failed: [Errno 5] Input/output error")
    link = links(port, timeout=0.01, retries=3)
    with pytest.raises(LinkClosed, match="port write failed: write failed"):
        link.send(0x03, b"\xa0")


def test_receive_after_close_raises_link_closed(links):
    link = links(ScriptedPort())
    link.close()
    with pytest.raises(LinkClosed, match="link closed"):
        link.receive(timeout=WAIT)


# ---- against the board's Link through a noisy wire --------------------------------

def _board_link_class():
    """firmware/link.py under CPython, with MicroPython's tick functions on `time` (as
    tests/firmware/conftest.py gives them)."""
    install_cpython_shims()
    spec = importlib.util.spec_from_file_location("board_link", FIRMWARE / "link.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert Path(sys.modules["framing"].__file__).resolve() == FIRMWARE / "framing.py"
    return module.Link


class Faults:
    """Damages chunks as they go onto the wire, reproducibly from a seed: a flipped
    bit, a dropped byte, the chunk twice, random bytes before it."""

    def __init__(self, seed, flip=0.0, drop=0.0, duplicate=0.0, garbage=0.0):
        self.rand = random.Random(seed)
        self.rates = {"flip": flip, "drop": drop, "duplicate": duplicate, "garbage": garbage}
        self.counts = dict.fromkeys(self.rates, 0)
        self.lock = threading.Lock()

    def __call__(self, data: bytes) -> bytes:
        with self.lock:
            r, data = self.rand, bytearray(data)
            if data and r.random() < self.rates["flip"]:
                self.counts["flip"] += 1
                data[r.randrange(len(data))] ^= 1 << r.randrange(8)
            if data and r.random() < self.rates["drop"]:
                self.counts["drop"] += 1
                del data[r.randrange(len(data))]
            if r.random() < self.rates["duplicate"]:
                self.counts["duplicate"] += 1
                data = data + data
            if r.random() < self.rates["garbage"]:
                self.counts["garbage"] += 1
                data[0:0] = bytes(r.randrange(256) for _ in range(r.randrange(1, 20)))
            return bytes(data)


class Wire:
    """One direction of the in-memory byte pipe."""

    def __init__(self, faults):
        self.faults = faults
        self.buf = bytearray()
        self.cond = threading.Condition()

    def put(self, data):
        data = self.faults(data)
        with self.cond:
            self.buf.extend(data)
            self.cond.notify_all()

    def take(self, n, wait=0.0):
        with self.cond:
            if not self.buf and wait:
                self.cond.wait(wait)
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out


class HostEnd:
    """The bridge's serial port on the wire (pyserial's read/write/in_waiting/flush)."""

    def __init__(self, rx: Wire, tx: Wire):
        self.rx, self.tx = rx, tx

    @property
    def in_waiting(self):
        with self.rx.cond:
            return len(self.rx.buf)

    def read(self, size=1):
        return self.rx.take(size, wait=0.005)

    def write(self, data):
        self.tx.put(bytes(data))
        return len(data)

    def flush(self):
        pass


class BoardEnd:
    """The board's UART on the wire, as firmware/link.py uses it (readinto, write)."""

    def __init__(self, rx: Wire, tx: Wire):
        self.rx, self.tx = rx, tx

    def readinto(self, buf):
        data = self.rx.take(len(buf))
        if not data:
            return None
        buf[:len(data)] = data
        return len(data)

    def write(self, data):
        self.tx.put(bytes(data))
        return len(data)


class Board(threading.Thread):
    """Pumps the board's Link the way firmware/app.py does, sending its own messages
    (one type per message, so a failure names the message) and collecting what arrives."""

    def __init__(self, link, outgoing):
        super().__init__(daemon=True)
        self.link = link
        self.outgoing = list(outgoing)
        self.received, self.failed = [], []
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            self._pump()
        except BaseException as exc:  # reported by done(), not lost in a thread
            self.error = exc

    def _pump(self):
        while not self.stop.is_set():
            while self.outgoing and self.link.send(*self.outgoing[0]):
                self.outgoing.pop(0)
            self.link.poll()
            while (msg := self.link.receive()) is not None:
                self.received.append(msg)
            while (mtype := self.link.take_failure()) is not None:
                self.failed.append(mtype)
            time.sleep(0.001)

    def done(self):
        if self.error is not None:
            raise AssertionError(f"the board's pump died: {self.error!r}")
        return not self.outgoing and self.link.idle()


def check_delivery(direction, sent, delivered, failed):
    """Every message arrives once and in order, or its sender said it failed."""
    summary = (f"{direction}: {len(sent)} sent, {len(delivered)} delivered, "
               f"{len(failed)} reported failed")
    positions = [sent.index(m) for m in delivered if m in sent]
    assert len(positions) == len(delivered), f"{summary}; delivered something never sent"
    assert positions == sorted(set(positions)), f"{summary}; duplicated or reordered: " \
                                                f"{positions}"
    lost = [m for m in sent if m not in delivered and m not in failed]
    assert not lost, f"{summary}; {len(lost)} lost without a failure report: {lost[:3]}"
    return summary


WIRES = [
    # name, fault rates per chunk, host/board timeout (s), retries
    ("clean", {}, 0.3, 5),
    ("noisy", dict(flip=0.05, drop=0.05, duplicate=0.05, garbage=0.05), 0.05, 5),
    ("very-noisy", dict(flip=0.2, drop=0.2, duplicate=0.2, garbage=0.2), 0.03, 3),
]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("rates, timeout, retries", [w[1:] for w in WIRES],
                         ids=[w[0] for w in WIRES])
def test_host_link_against_board_link_through_a_faulty_wire(links, seed, rates, timeout,
                                                            retries):
    BoardLink = _board_link_class()
    faults = Faults(seed, **rates)
    to_board, to_host = Wire(faults), Wire(faults)
    host = links(HostEnd(rx=to_host, tx=to_board), timeout=timeout, retries=retries)
    clock = lambda: int(time.monotonic() * 1000)  # noqa: E731
    board_link = BoardLink(BoardEnd(rx=to_board, tx=to_host), clock,
                           timeout_ms=int(timeout * 1000), retries=retries)
    rand = random.Random(seed)
    host_msgs = [(0x20, b"h%03d" % i + bytes(rand.randrange(256)
                                             for _ in range(rand.randrange(0, 200))))
                 for i in range(25)]
    board_msgs = [(0x40 + i, b"b%03d" % i + bytes(rand.randrange(256)
                                                  for _ in range(rand.randrange(0, 120))))
                  for i in range(25)]
    board = Board(board_link, board_msgs)
    host_received, host_failed = [], []
    collecting = threading.Event()

    def collect():
        while not collecting.is_set():
            msg = host.receive(timeout=0.01)
            if msg is not None:
                host_received.append(msg)
    collector = threading.Thread(target=collect, daemon=True)
    board.start()
    collector.start()
    try:
        for msg in host_msgs:  # both directions at once: the board sends as it likes
            try:
                host.send(*msg)
            except LinkFailed:
                host_failed.append(msg)
        wait_until(board.done, "the board has sent or given up on all it had",
                   timeout=60)
        time.sleep(3 * timeout)  # let the last ACKs and deliveries land (no assertion on it)
    finally:
        board.stop.set()
        board.join(timeout=WAIT)
        collecting.set()
        collector.join(timeout=WAIT)
        while (msg := host.receive(timeout=0)) is not None:
            host_received.append(msg)
    board_failed = [m for m in board_msgs if m[0] in board.failed]
    stats = (f"faults {faults.counts}; host {host.counters()}; "
             f"board {board_link.counters()}")
    check_delivery("host->board", host_msgs, board.received, host_failed)
    check_delivery("board->host", board_msgs, host_received, board_failed)
    if not rates:
        assert not host_failed and not board_failed, stats
        assert board.received == host_msgs and host_received == board_msgs, stats
    else:
        assert sum(faults.counts.values()) > 0, f"the injector did nothing: {stats}"
        errors = sum(v for k, v in host.counters().items() if k.endswith("_errors"))
        errors += sum(board_link.counters()[k]
                      for k in ("crc_errors", "framing_errors", "oversize", "bad_header"))
        assert errors > 0, f"damaged frames went uncounted: {stats}"
    # the receivers' view agrees with what the senders report
    assert board_link.counters()["rx"] == len(board.received), stats
    assert host.counters().get("rx", 0) == len(host_received), stats
