"""The paced link (posbridge/link/paced_line.py, pty_middle.py with baud): bytes cross
whole and in order both ways, the count of bytes delivered is kept, and the emulated
board runs over it. Speed is not asserted here: make bench measures it."""
import os
import pty
import threading
import time
import tty

from posbridge.link.paced_line import PacedLine, byte_time
from posbridge.link.pty_middle import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD, PtyMiddle


def test_a_byte_takes_ten_bit_times_8n1():
    assert byte_time(115200) * 11520 == 1.0


def test_a_paced_line_delivers_every_byte_in_order():
    got = bytearray()
    done = threading.Event()

    def write(data):
        got.extend(data)
        if len(got) == 3000:
            done.set()
    line = PacedLine(write, 2_000_000)
    chunks = [bytes(range(i % 256, i % 256 + 1)) * (i % 7 + 1) for i in range(1000)]
    expected = b"".join(chunks)[:3000]
    total = 0
    for chunk in chunks:
        chunk = chunk[:3000 - total]
        if not chunk:
            break
        line.put(chunk)
        total += len(chunk)
    assert done.wait(10)
    line.close()
    assert bytes(got) == expected and line.bytes_sent == 3000


def _read_all(fd, n, timeout=10):
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n and time.monotonic() < deadline:
        try:
            buf += os.read(fd, n - len(buf))
        except BlockingIOError:
            time.sleep(0.001)
    return buf


def test_a_paced_middle_carries_both_directions_whole():
    board_master, board_slave = pty.openpty()
    for fd in (board_master, board_slave):
        tty.setraw(fd)
    os.set_blocking(board_master, False)
    middle = PtyMiddle(os.ttyname(board_slave), baud=460800)
    bridge = os.open(middle.start(), os.O_RDWR | os.O_NOCTTY)
    tty.setraw(bridge)
    os.set_blocking(bridge, False)
    try:
        up = bytes(range(256)) * 4
        down = bytes(reversed(range(256))) * 3
        os.write(board_master, up)       # the board sends
        os.write(bridge, down)           # the bridge sends at the same time
        assert _read_all(bridge, len(up)) == up
        assert _read_all(board_master, len(down)) == down
        assert middle.bytes_sent(BOARD_TO_BRIDGE) == len(up)
        assert middle.bytes_sent(BRIDGE_TO_BOARD) == len(down)
    finally:
        middle.stop()
        for fd in (bridge, board_master, board_slave):
            os.close(fd)
