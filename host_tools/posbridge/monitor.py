"""The frame monitor (`posbridge monitor --tap PATH`): reads the bridge's tap (tap.py) and
prints, as they happen, the board link's frames and the ISO 8583 messages, decoded by
link/readable.py: fields named, the PAN masked, the PIN block, the ICC data and every
byte string that is not known to be harmless as their length only.

The tap gives the serial bytes as they crossed the port: the monitor cuts them into
frames itself (a FrameSplitter for each port and direction), so a garbled frame (bad
CRC, bad COBS, too long) is printed as such, as the bridge's link saw it. Nothing the
tap sends can stop the monitor: a record it cannot read is said to be unreadable, and
every line printed goes through the card number mask once more, the monitor's own last
line of defence."""
import json
import socket
import time
from collections import Counter

from rich.console import Console
from rich.text import Text

from .link.framing import FrameSplitter
from .link.pan import mask_pans_in_text
from .link.readable import iso_message, link_frame

MAX_RECORD = 64 * 1024     # a tap record: some KB at most (a read of the serial port)
MAX_STREAMS = 256          # frame cutters kept (port and direction); a bridge has a few
_ERRORS = {"crc": "CRC mismatch", "framing": "bad framing (COBS or too short)",
           "oversize": "too long for a frame"}
_ARROWS = {("serial", "in"): "board>bridge", ("serial", "out"): "bridge>board",
           ("iso", "in"): "host>bridge", ("iso", "out"): "bridge>host"}
_STYLES = {"in": "cyan", "out": "green"}


class Monitor:
    """Turns tap records into what a person reads; `show` prints one Text."""

    def __init__(self, show, acks: bool = False):
        self.show = show
        self.acks = acks                       # ACK frames: one line each when asked
        self.counts = Counter()
        self._splitters: dict = {}

    # ---- records ------------------------------------------------------------------

    def record(self, line: bytes):
        """One line of the tap; whatever it holds, a line printed or nothing, no error."""
        self.counts["records"] += 1
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            channel = record.get("ch")
            if channel == "dropped":
                self._dropped(int(record["n"]))
            elif channel == "serial":
                self._serial(record)
            elif channel == "iso":
                self._iso(record)
            else:
                raise ValueError("unknown channel")
        except Exception as exc:    # noqa: BLE001 - a hostile record must not stop us
            self.counts["unreadable"] += 1
            self._line(time.time(), "tap", "", "red",
                       f"unreadable record ({len(line)} bytes): {type(exc).__name__}")

    def _dropped(self, n: int):
        self.counts["dropped"] += n
        # frames cut by the gap would show as garbled: start every stream afresh
        self._splitters.clear()
        self._line(time.time(), "tap", "", "yellow",
                   f"{n} records dropped: this monitor did not keep up with the bridge")

    def _serial(self, record: dict):
        at, src, direction = _header(record)
        data = bytes.fromhex(record["hex"])
        key = (src, direction)
        splitter = self._splitters.get(key)
        if splitter is None:
            if len(self._splitters) >= MAX_STREAMS:     # a tap naming ports without end
                self._splitters.clear()
            splitter = self._splitters[key] = FrameSplitter()
        arrow = _ARROWS[("serial", direction)]

        def bad(kind, size):
            self.counts["garbled"] += 1
            self._line(at, src, arrow, "red",
                       f"garbled frame: {_ERRORS.get(kind, kind)} ({size} bytes)")
        splitter.on_error = bad
        for payload in splitter.feed(data):
            self._frame(at, src, arrow, direction, payload)

    def _frame(self, at, src, arrow, direction, payload: bytes):
        frame = link_frame(payload)
        self.counts["frames"] += 1
        if frame["name"] == "ACK" and not frame["problem"]:
            if self.acks:
                self._line(at, src, arrow, "dim", f"ACK seq={frame['seq']}")
            return
        head = frame["name"]
        if "seq" in frame:
            head += f" seq={frame['seq']}" + (" SYN" if frame["syn"] else "")
        lines = [f"{name} = {_value(value)}" for name, value in frame["fields"].items()]
        if frame["problem"]:
            self.counts["undecodable"] += 1
            lines.append(f"! {frame['problem']}")
        self._line(at, src, arrow, _STYLES[direction], head, lines)

    def _iso(self, record: dict):
        at, src, direction = _header(record)
        message = iso_message(bytes.fromhex(record["hex"]))
        self.counts["iso"] += 1
        lines = [f"{number:>3} {desc} = {value}" for number, desc, value in message["fields"]]
        if message["problem"]:
            self.counts["undecodable"] += 1
            lines.append(f"! {message['problem']}")
        self._line(at, src, _ARROWS[("iso", direction)], _STYLES[direction],
                   f"{message['mti']} {message['name']}", lines)

    def _line(self, at, src, arrow, style, head, lines=()):
        stamp = time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}"
        text = Text(mask_pans_in_text(f"{stamp} {src} {arrow} ".replace("  ", " ")),
                    style="dim")
        text.append(mask_pans_in_text(head), style=f"bold {style}")
        for line in lines:
            text.append("\n    " + mask_pans_in_text(line))
        self.show(text)

    def summary(self) -> str:
        c = self.counts
        return (f"{c['frames']} frames, {c['iso']} ISO 8583 messages, {c['garbled']} garbled "
                f"frames, {c['undecodable']} undecodable, {c['unreadable']} unreadable "
                f"records, {c['dropped']} dropped by the tap")


def _header(record: dict):
    at = float(record.get("at", time.time()))
    direction = record["dir"]
    if direction not in ("in", "out"):
        raise ValueError("direction")
    return at, str(record.get("src", "?"))[:60], direction


def _value(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


class Lines:
    """The tap's stream cut into lines; a line over MAX_RECORD is given as its first
    MAX_RECORD bytes (it will not parse: unreadable) and the rest of it skipped."""

    def __init__(self):
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list:
        out = []
        self._buffer.extend(data)
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_RECORD:
                    if not self._skipping:
                        out.append(bytes(self._buffer[:MAX_RECORD]))
                    self._skipping = True
                    self._buffer.clear()
                return out
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            if self._skipping:          # the end of an over-long line
                self._skipping = False
            elif line:
                out.append(line)


def connect(path: str) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        raise
    return conn


def run(path: str, console: Console, stop, once: bool = False, acks: bool = False,
        retry_s: float = 1.0) -> Monitor:
    """Print the tap at `path` until `stop` is set (or, with `once`, until the tap
    closes); waits for a tap that is not there yet, and comes back when it goes."""
    monitor = Monitor(lambda text: console.print(text, highlight=False), acks=acks)
    waiting_said = False
    while not stop.is_set():
        try:
            conn = connect(path)
        except OSError as exc:
            if once:
                raise
            if not waiting_said:
                console.print(f"waiting for the bridge's tap at {path} ({exc.strerror})",
                              style="yellow", highlight=False)
                waiting_said = True
            stop.wait(retry_s)
            continue
        waiting_said = False
        console.print(f"monitoring the bridge's tap at {path}", style="bold", highlight=False)
        conn.settimeout(0.5)
        with conn:
            try:
                _read_until(conn, monitor, stop)
            except OSError as exc:
                console.print(f"tap connection lost: {exc}", style="yellow", highlight=False)
        console.print("the bridge's tap closed", style="yellow", highlight=False)
        if once:
            break
    return monitor


def _read_until(conn, monitor, stop):
    lines = Lines()
    while not stop.is_set():
        try:
            data = conn.recv(65536)
        except socket.timeout:
            continue
        if not data:
            return
        for line in lines.feed(data):
            monitor.record(line)
