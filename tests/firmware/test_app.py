# The terminal application against a scripted bridge: boot handshake, liveness, errors.
import cbor
import messages as m
import settings
from app import Terminal
from link import Link, FLAG_SYN
from framing import FrameDecoder
from fwtest import ScriptedStream, FakeClock


class RecordingPanel:
    def __init__(self):
        self.screens = []

    def show(self, buf, lines=()):
        self.screens.append(lines)

    def last(self):
        return "\n".join(self.screens[-1])


class Rig:
    """A Terminal and a peer Link playing the bridge, joined by scripted streams."""

    def __init__(self, store=None):
        self.clock = FakeClock(1000)
        self.board_stream = ScriptedStream()
        self.panel = RecordingPanel()
        self.term = Terminal(self.board_stream, self.panel, clock=self.clock,
                             terminal_id="T42", store=store)
        self.bridge = Link(ScriptedStream(), self.clock)

    def step(self, n=1, ms=10):
        for _ in range(n):
            self.term.step()
            self.bridge.stream.feed(self.board_stream.take_written())
            self.bridge.poll()
            self.board_stream.feed(self.bridge.stream.take_written())
            self.clock.advance(ms)

    def from_board(self):
        got = []
        while True:
            msg = self.bridge.receive()
            if msg is None:
                return got
            got.append((msg[0], cbor.decode(msg[1])))

    def to_board(self, mtype, fields):
        self.bridge.send(mtype, cbor.encode(fields) if isinstance(fields, dict) else fields)


def booted(store=None, reply=None):
    rig = Rig(store)
    rig.step(3)
    hello = rig.from_board()
    assert hello[0][0] == m.HELLO
    rig.to_board(m.HELLO_REPLY, reply or {1: 1, 2: 1795305600, 3: "0.1.0"})
    rig.step(3)
    return rig


def test_boot_screen_then_hello_with_identity():
    rig = Rig()
    assert "Starting" in rig.panel.last() and "T42" in rig.panel.last()
    rig.step(3)
    msgs = rig.from_board()
    assert msgs == [(m.HELLO, {1: 1, 2: settings.FIRMWARE_VERSION, 3: "T42"})]


def test_hello_reply_sets_time_and_shows_idle():
    rig = booted()
    screen = rig.panel.last()
    assert "Insert card" in screen and "online" in screen
    # 1795305600 is 00:00 UTC; with no terminal record, the demo merchant's UTC+8
    assert "08:00" in screen
    assert rig.term.state == "idle"


def _terminal_record(**fields):
    # a flash of its own; not terminal_rig's helpers: compiling that module under the
    # 64 KiB heap leaves no room for the terminal
    import binascii
    import os
    from store import Store
    path = "/tmp/pos-app-" + binascii.hexlify(os.urandom(4)).decode()
    os.mkdir(path)
    store = Store(path)
    record = {"terminal_id": "T42", "initial_key": "00" * 16, "initial_key_id": "00" * 8}
    record.update(fields)
    store.save("terminal", record)
    return store


def _unload_visit():
    import gc
    import sys
    from app import VISIT_MODULES
    for name in VISIT_MODULES:
        sys.modules.pop(name, None)
    gc.collect()


def _close(rig):
    import os
    path = rig.term.store.directory
    for name in os.listdir(path):
        os.remove(path + "/" + name)
    os.rmdir(path)


def test_the_idle_time_is_the_records_offset_not_the_bridges():
    # a merchant in UTC-5; an older bridge still sends its PC's offset (key 4): ignored
    rig = booted(_terminal_record(utc_offset_min=-300),
                 {1: 1, 2: 1795305600, 3: "0.1.0", 4: 480})
    try:
        screen = rig.panel.last()
        assert "Insert card" in screen and "19:00" in screen, screen
        # the bridge's STATUS sets the time again, never the offset
        rig.to_board(m.STATUS, {1: 5, 3: "ready", 6: 1795305600 + 3600})
        rig.clock.advance(60000)
        rig.step(3)
        assert "20:0" in rig.panel.last(), rig.panel.last()
    finally:
        _close(rig)


def test_a_record_with_an_offset_the_board_cannot_show_keeps_the_default():
    import wallclock
    for bad in ("+08:00", 841, -721, 8.5, True, None):
        wallclock._utc_offset_min = 480         # as at power-on (a process per board)
        rig = booted(_terminal_record(utc_offset_min=bad))
        try:
            screen = rig.panel.last()
            assert "Insert card" in screen and "08:00" in screen, (bad, screen)
            assert rig.term.out_of_service is None
        finally:
            _close(rig)
            rig = None
            _unload_visit()     # room for the next board in a 64 KiB heap


def test_hello_retried_with_backoff_while_bridge_silent():
    rig = Rig()
    sent_at = []
    for _ in range(2000):  # 20 s, no bridge reading
        rig.term.step()
        for frame in _frames(rig.board_stream.take_written()):
            if frame[1] == m.HELLO and (not sent_at or sent_at[-1][1] != frame[2]):
                sent_at.append((rig.clock.now, frame[2]))
        rig.clock.advance(10)
    assert "Host offline" in rig.panel.last()
    assert len(sent_at) >= 3
    gaps = [b[0] - a[0] for a, b in zip(sent_at, sent_at[1:])]
    assert gaps == sorted(gaps)  # backing off, never hammering


def test_status_request_answered_with_heap_and_counters():
    rig = booted()
    rig.to_board(m.STATUS_REQUEST, {})
    rig.step(3)
    (mtype, status), = rig.from_board()
    assert mtype == m.STATUS
    assert status[m.K_STATE] == "idle"
    assert status[m.K_HEAP_FREE] > 0
    assert sorted(status[m.K_LINK]) == list(range(1, 11))
    assert status[m.K_LINK][2] == 2  # rx: HELLO_REPLY and STATUS_REQUEST


def test_unknown_type_and_malformed_body_get_errors_not_crashes():
    rig = booted()
    rig.to_board(0x7E, {})
    rig.to_board(m.STATUS_REQUEST, b"\xff\x00")
    rig.to_board(m.HELLO_REPLY, {1: "one"})
    rig.step(10)
    errors = rig.from_board()
    assert [e[1][m.K_ERROR_CODE] for e in errors] == [m.ERR_UNSUPPORTED_TYPE, m.ERR_MALFORMED,
                                                      m.ERR_MALFORMED]
    assert [e[1][m.K_ERROR_TYPE] for e in errors] == [0x7E, m.STATUS_REQUEST, m.HELLO_REPLY]
    assert rig.term.state == "idle"


def test_malformed_error_is_not_answered():
    rig = booted()
    rig.to_board(m.ERROR, b"\x01")
    rig.step(5)
    assert rig.from_board() == []


def test_protocol_mismatch_is_shown():
    rig = Rig()
    rig.step(3)
    rig.from_board()
    rig.to_board(m.HELLO_REPLY, {1: 2, 2: 1795305600, 3: "9.0"})
    rig.step(3)
    assert "protocol 2" in rig.panel.last()
    assert rig.term.state == "boot"


def test_bridge_error_about_hello_is_shown():
    rig = Rig()
    rig.step(3)
    rig.from_board()
    rig.to_board(m.ERROR, {1: 3, 2: "bridge speaks 1", 3: m.HELLO})
    rig.step(3)
    assert "Bridge refused" in rig.panel.last()


def test_liveness_marks_offline_then_online():
    rig = booted()
    # the bridge stops answering: the next liveness check fails
    for _ in range(settings.STATUS_INTERVAL_MS // 100 + 100):
        rig.term.step()
        rig.board_stream.take_written()
        rig.clock.advance(100)
    assert "offline" in rig.panel.last()
    rig.to_board(m.STATUS, {1: 5, 3: "ready", 6: 1795305700})
    rig.step(5)
    assert "online" in rig.panel.last()


def _frames(data):
    out = []
    FrameDecoder().feed(data, len(data), out.append)
    return out


def test_an_exception_in_a_step_shows_an_error_and_the_terminal_goes_on():
    rig = booted()
    calls = [0]
    real_poll = rig.term.link.poll

    def failing_poll():
        calls[0] += 1
        if calls[0] == 1:
            raise MemoryError("memory allocation failed")
        real_poll()
    rig.term.link.poll = failing_poll
    rig.term.guarded_step()
    assert "Terminal error" in rig.panel.last()
    assert rig.term.faults == 1
    rig.clock.advance(3100)
    for _ in range(3):
        rig.term.guarded_step()
    assert "Insert card" in rig.panel.last()
    rig.to_board(m.STATUS_REQUEST, {})
    rig.step(3)
    assert rig.from_board()[0][0] == m.STATUS
