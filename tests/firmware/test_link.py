# Link layer: acknowledgement, retransmission, duplicates, sessions, scripted streams.
from link import Link, LinkError, PROTOCOL_VERSION, TYPE_ACK, FLAG_SYN, MAX_BODY
from framing import FrameDecoder, encode_frame
from fwtest import ScriptedStream, FakeClock, raises


def make_pair(timeout_ms=300, retries=5):
    clock = FakeClock()
    a_stream, b_stream = ScriptedStream(), ScriptedStream()
    a = Link(a_stream, clock, timeout_ms, retries)
    b = Link(b_stream, clock, timeout_ms, retries)
    return clock, a, b


def carry(src, dst, fault=None):
    data = src.stream.take_written()
    if fault:
        data = fault(data)
    if data:
        dst.stream.feed(data)


def run(clock, a, b, steps=50, step_ms=10, fault_ab=None, fault_ba=None):
    for _ in range(steps):
        a.poll()
        carry(a, b, fault_ab)
        b.poll()
        carry(b, a, fault_ba)
        clock.advance(step_ms)


def frames_in(data):
    out = []
    FrameDecoder().feed(data, len(data), out.append)
    return out


def test_message_delivered_once_and_acked():
    clock, a, b = make_pair()
    assert a.send(1, b"\xa0")
    run(clock, a, b)
    assert b.receive() == (1, b"\xa0")
    assert b.receive() is None
    assert a.idle()
    assert a.counters()["retransmits"] == 0


def test_both_directions_at_once_in_order():
    clock, a, b = make_pair()
    for i in range(3):
        assert a.send(5, bytes((i,)))
        assert b.send(6, bytes((i + 10,)))
    run(clock, a, b, steps=100)
    assert [b.receive() for _ in range(3)] == [(5, b"\x00"), (5, b"\x01"), (5, b"\x02")]
    assert [a.receive() for _ in range(3)] == [(6, b"\x0a"), (6, b"\x0b"), (6, b"\x0c")]


def test_first_frame_carries_syn_then_not():
    clock, a, b = make_pair()
    a.send(1, b"")
    a.poll()
    first = frames_in(a.stream.take_written())[0]
    assert first[0] == PROTOCOL_VERSION and first[1] == 1 and first[3] & FLAG_SYN
    a.stream.feed(encode_frame(bytes((PROTOCOL_VERSION, TYPE_ACK, first[2], 0))))
    a.poll()
    a.send(1, b"")
    a.poll()
    second = frames_in(a.stream.take_written())[0]
    assert second[2] == (first[2] + 1) & 0xFF and not second[3] & FLAG_SYN


def test_lost_ack_gives_retransmit_and_duplicate_is_dropped():
    clock, a, b = make_pair()
    a.send(2, b"pay")
    acks_dropped = [0]

    def drop_first_ack(data):
        if acks_dropped[0] == 0 and data:
            acks_dropped[0] = 1
            return b""
        return data

    run(clock, a, b, steps=80, fault_ba=drop_first_ack)
    assert b.receive() == (2, b"pay")
    assert b.receive() is None
    assert a.counters()["retransmits"] >= 1
    assert b.counters()["duplicates"] == 1
    assert a.idle()


def test_silent_peer_reports_failure_after_retries():
    clock = FakeClock()
    stream = ScriptedStream()
    a = Link(stream, clock, timeout_ms=100, retries=3)
    a.send(7, b"x")
    for _ in range(100):
        a.poll()
        clock.advance(10)
    sent = frames_in(stream.take_written())
    assert len(sent) == 4  # first try and three retries
    assert a.take_failure() == 7
    assert a.take_failure() is None
    assert a.idle()


def test_next_message_after_failure_gets_new_sequence():
    clock = FakeClock()
    stream = ScriptedStream()
    a = Link(stream, clock, timeout_ms=50, retries=0)
    a.send(7, b"x")
    for _ in range(20):
        a.poll()
        clock.advance(10)
    a.send(8, b"y")
    a.poll()
    frames = frames_in(stream.take_written())
    assert frames[0][2] != frames[-1][2]


def test_reboot_peer_with_same_sequence_is_not_taken_for_duplicate():
    clock, a, b = make_pair()
    a.tx_seq = 42
    a.send(1, b"old")
    run(clock, a, b)
    a.send(1, b"old2")
    run(clock, a, b)
    assert b.receive() == (1, b"old") and b.receive() == (1, b"old2")
    # the peer restarts and happens to pick the sequence number last seen
    a2 = Link(a.stream, clock)
    a2.tx_seq = 43
    a2.send(1, b"new session")
    run(clock, a2, b)
    assert b.receive() == (1, b"new session")


def test_split_reads_byte_by_byte():
    clock, a, b = make_pair()
    a.send(3, b"\x00" * 40 + b"end")
    a.poll()
    wire = a.stream.take_written()
    for i in range(len(wire)):
        b.stream.feed(wire[i:i + 1])
    for _ in range(len(wire) + 1):
        b.poll()
    assert b.receive() == (3, b"\x00" * 40 + b"end")


def test_wrong_version_and_short_frames_ignored():
    clock, a, b = make_pair()
    b.stream.feed(encode_frame(b"\x09\x01\x00\x00body") + encode_frame(b"\x01\x01"))
    b.poll()
    assert b.receive() is None
    assert b.counters()["bad_header"] == 2
    assert b.stream.take_written() == b""  # nothing acknowledged


def test_send_limits():
    clock, a, b = make_pair()
    raises(LinkError, a.send, TYPE_ACK, b"")
    raises(LinkError, a.send, 1, b"x" * (MAX_BODY + 1))
    for _ in range(a.queue_size):
        assert a.send(1, b"")
    assert not a.send(1, b"")


def test_stream_write_error_does_not_crash():
    class FullStream(ScriptedStream):
        def write(self, data):
            raise OSError(11)

    clock = FakeClock()
    a = Link(FullStream(), clock, timeout_ms=10, retries=1)
    a.send(1, b"x")
    for _ in range(10):
        a.poll()
        clock.advance(10)
    assert a.take_failure() == 1
    assert a.counters()["short_writes"] >= 2


def lcg(seed):
    state = [seed]

    def next_int(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % n
    return next_int


def noisy(rand):
    # flips bits, drops, duplicates and adds garbage, a chunk at a time
    def fault(data):
        if not data:
            return data
        data = bytearray(data)
        r = rand(10)
        if r == 0:
            data[rand(len(data))] ^= 1 << rand(8)
        elif r == 1:
            k = rand(len(data))
            data = data[:k] + data[k + 1:]
        elif r == 2:
            data = data + data
        elif r == 3:
            data = bytearray(bytes(rand(256) for _ in range(rand(20)))) + data
        elif r == 4:
            return b""
        return bytes(data)
    return fault


def test_noisy_link_delivers_each_message_once_in_order_or_reports():
    clock, a, b = make_pair(timeout_ms=60, retries=8)
    rand = lcg(2024)
    sent = []
    got = []
    failures = 0
    for i in range(60):
        body = bytes((i,)) * (1 + i % 30)
        while not a.send(9, body):
            run(clock, a, b, steps=1, fault_ab=noisy(rand), fault_ba=noisy(rand))
        sent.append(body)
        run(clock, a, b, steps=3, fault_ab=noisy(rand), fault_ba=noisy(rand))
        while True:
            m = b.receive()
            if m is None:
                break
            got.append(m[1])
        while a.take_failure() is not None:
            failures += 1
    run(clock, a, b, steps=400, fault_ab=noisy(rand), fault_ba=noisy(rand))
    while True:
        m = b.receive()
        if m is None:
            break
        got.append(m[1])
    while a.take_failure() is not None:
        failures += 1
    # in order, no duplicates; anything missing was reported as a failure
    assert len(got) == len(set(got))
    assert got == [s for s in sent if s in got]
    assert len(sent) - len(got) <= failures
    assert len(got) >= 50
