"""The bridge's tap (`posbridge serve --tap PATH`): a copy of every byte the bridge reads
from or writes to a board's serial port, and of every ISO 8583 message it sends to or
gets from the issuer host, for `posbridge monitor` (monitor.py) to decode and print.

The tap listens on a Unix socket made readable and writable by the bridge's user only
(mode 0600): what crosses it is what crosses the serial port and the TCP link, the PAN
included, so it is given to no one who could not read the serial port already. The
monitor masks; the tap does not decode anything.

A record is one line of JSON (docs/monitor.md):
    {"at": unix time, "ch": "serial" | "iso", "src": port or host:port,
     "dir": "in" (to the bridge) | "out" (from it), "hex": the bytes}
    {"ch": "dropped", "n": records this monitor missed}

The bridge never waits for a monitor: publish() only puts the record on each monitor's
bounded queue, and a monitor whose queue is full (slow, or stopped reading) loses the
record; the count of lost records goes to it as a "dropped" record as soon as there is
room again. Each monitor has a thread of its own that writes to it."""
import json
import logging
import os
import queue
import socket
import threading
import time

log = logging.getLogger("posbridge.tap")

QUEUE_RECORDS = 2000       # per monitor: some seconds of a busy bridge


class Subscriber:
    def __init__(self, conn: socket.socket, capacity: int):
        self.conn = conn
        self.queue: queue.Queue = queue.Queue(capacity)
        self.dropped = 0          # records lost since the last "dropped" record
        self.dropped_total = 0
        self.closed = False
        self._lock = threading.Lock()   # publishers are several threads

    def offer(self, record: bytes) -> bool:
        try:
            self.queue.put_nowait(record)
            return True
        except queue.Full:
            with self._lock:
                self.dropped += 1
                self.dropped_total += 1
            return False

    def run(self, on_end):
        try:
            while not self.closed:
                record = self.queue.get()
                if record is None:
                    break
                with self._lock:
                    lost, self.dropped = self.dropped, 0
                if lost:
                    self.conn.sendall(json.dumps({"ch": "dropped", "n": lost}).encode()
                                      + b"\n")
                self.conn.sendall(record)
        except OSError:
            pass                  # the monitor went away
        finally:
            self.closed = True
            try:
                self.conn.close()
            except OSError:
                pass
            on_end(self)

    def stop(self, thread, drain_s: float = 1.0):
        """What is queued goes out first, for `drain_s` at most (a bridge that stops
        shows its last frames); then the connection is cut."""
        try:
            self.queue.put(None, timeout=drain_s)
            thread.join(timeout=drain_s)
        except queue.Full:
            pass
        self.closed = True
        try:
            self.conn.shutdown(socket.SHUT_RDWR)   # wakes a sendall blocked on it
        except OSError:
            pass
        thread.join(timeout=1)


class Tap:
    def __init__(self, path: str, capacity: int = QUEUE_RECORDS, clock=time.time):
        self.path = path
        self.capacity = capacity
        self.clock = clock
        self._lock = threading.Lock()
        self._subscribers: dict[Subscriber, threading.Thread] = {}
        self._server = None
        self._thread = None
        self.published = 0
        self.dropped = 0          # records lost to slow monitors, all of them together

    def start(self) -> "Tap":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.path) and _stale_socket(self.path):
            os.unlink(self.path)
        # owner only from the first moment: the umask holds while the socket is made
        old = os.umask(0o177)
        try:
            server.bind(self.path)
        finally:
            os.umask(old)
        server.listen(8)
        self._server = server
        self._thread = threading.Thread(target=self._accept, name="tap", daemon=True)
        self._thread.start()
        return self

    def close(self):
        server, self._server = self._server, None
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            server.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass
        with self._lock:
            subscribers = list(self._subscribers.items())
        for sub, thread in subscribers:
            sub.stop(thread)
        if self._thread is not None:
            self._thread.join(timeout=2)

    @property
    def monitors(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, channel: str, source: str, direction: str, data: bytes):
        """A copy of `data` to every monitor connected; never blocks."""
        with self._lock:
            subscribers = list(self._subscribers)
            self.published += 1
        if not subscribers:
            return
        record = json.dumps({"at": round(self.clock(), 6), "ch": channel, "src": source,
                             "dir": direction, "hex": bytes(data).hex()}).encode() + b"\n"
        lost = sum(not sub.offer(record) for sub in subscribers)
        if lost:
            with self._lock:
                self.dropped += lost

    def serial(self, source: str):
        """The wire_tap of a board's HostLink: ("rx" | "tx", bytes)."""
        def tap(direction, data):
            self.publish("serial", source, "in" if direction == "rx" else "out", data)
        return tap

    def iso(self, source: str):
        """The tap of the Upstream: ("in" | "out", one ISO 8583 message)."""
        def tap(direction, data):
            self.publish("iso", source, direction, data)
        return tap

    def _accept(self):
        while self._server is not None:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            conn.shutdown(socket.SHUT_RD)          # the monitor has nothing to say
            sub = Subscriber(conn, self.capacity)
            thread = threading.Thread(target=sub.run, args=(self._ended,), daemon=True,
                                      name="tap-monitor")
            with self._lock:      # registered and started at once: close() joins it
                self._subscribers[sub] = thread
                thread.start()
            log.info("monitor connected to the tap (%d now)", self.monitors)

    def _ended(self, sub: Subscriber):
        with self._lock:
            self._subscribers.pop(sub, None)
        log.info("monitor left the tap (%d records it missed)", sub.dropped_total)


def _stale_socket(path: str) -> bool:
    """Whether `path` is a socket nobody listens on (a bridge that died): then it may go.
    Anything else there is left alone, and bind() says the path is taken."""
    import stat
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except OSError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return True
    finally:
        probe.close()
    return False
