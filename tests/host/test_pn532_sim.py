"""The virtual PN532 (board/pn532_sim.py) byte for byte over a socketpair, as the board's
driver talks to it: wake-up, ACK then the answer, normal and extended frames, bad
checksums, NACK, a card leaving the field, a reader answering noise."""
import socket
import time

import pytest

from posbridge.board.emv_card import PPSE, EmvCard
from posbridge.board.pn532_sim import (ACK, ERROR_FRAME, NACK, FrameReader,
                                       Pn532Simulator, information_frame)
from posbridge.issuer.keystore import KeyStore

from .emv_kernel import select

WAKE = b"\x55\x55" + bytes(14)
PAN = "4761730000000011"


def command(code, data=b""):
    return information_frame(bytes([code]) + data, tfi=0xD4)


class Host:
    """The board's side of the reader's stream."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(2)
        self.reader = FrameReader()
        self.events = []

    def send(self, data):
        self.sock.sendall(data)

    def next(self, timeout=2.0):
        deadline = time.monotonic() + timeout
        while not self.events:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(1024)
            except socket.timeout:
                return None
            self.events += self.reader.feed(data)
        return self.events.pop(0)

    def call(self, code, data=b"", timeout=2.0):
        """ACK, then the answer's data after D5 and code + 1."""
        self.send(command(code, data))
        ack = self.next(timeout)
        assert ack is not None and ack.kind == "ack"
        answer = self.next(timeout)
        assert answer is not None and answer.kind == "frame", answer
        assert answer.data[:2] == bytes([0xD5, code + 1])
        return answer.data[2:]

    def apdu(self, apdu):
        answer = self.call(0x40, b"\x01" + apdu)
        return answer[0], answer[1:]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    store = KeyStore.create(tmp_path_factory.mktemp("keys") / "issuer.keys")
    store.create_issuer_master_keys("476173")
    return store


@pytest.fixture
def rig():
    board, reader = socket.socketpair()
    sim = Pn532Simulator(reader).start()
    host = Host(board)
    yield sim, host
    sim.stop()
    board.close()


def awake(host):
    host.send(WAKE)
    assert host.call(0x14, b"\x01\x14\x01") == b""


def test_frames_by_the_manual():
    assert information_frame(b"\x03\x32\x01\x06\x07") == bytes.fromhex(
        "0000FF06FAD50332010607" + "E8" + "00")
    assert command(0x02) == bytes.fromhex("0000FF02FED4022A00")
    big = information_frame(bytes(300))
    assert big[:5] == b"\x00\x00\xff\xff\xff" and big[5:7] == (301).to_bytes(2, "big")
    assert (big[5] + big[6] + big[7]) & 0xFF == 0
    events = FrameReader().feed(b"\x55\x00" + big + ACK + NACK)
    assert [e.kind for e in events] == ["frame", "ack", "nack"]
    assert events[0].data == b"\xd5" + bytes(300)


def test_frame_reader_waits_for_the_rest_and_skips_noise():
    reader = FrameReader()
    frame = command(0x02)
    assert reader.feed(b"\x13\x37" + frame[:5]) == []
    assert [e.data for e in reader.feed(frame[5:])] == [b"\xd4\x02"]
    bad_lcs = bytes.fromhex("0000FF02FFD4022A00")
    bad_dcs = bytes.fromhex("0000FF02FED4022B00")
    assert [(e.kind, e.data) for e in reader.feed(bad_lcs + bad_dcs + frame)] == [
        ("bad", b"LCS"), ("bad", b"DCS"), ("frame", b"\xd4\x02")]


def test_asleep_until_the_wake_up(rig):
    sim, host = rig
    host.send(command(0x02))
    assert host.next(0.3) is None                     # lost: the chip sleeps
    awake(host)
    assert host.call(0x02) == bytes([0x32, 0x01, 0x06, 0x07])
    assert sim.sam_configured and sim.dropped == 1


def test_bad_checksum_is_not_acknowledged_and_nack_repeats(rig):
    sim, host = rig
    awake(host)
    host.send(bytes.fromhex("0000FF02FED4022B00"))
    assert host.next(0.3) is None
    assert host.call(0x02) == bytes([0x32, 0x01, 0x06, 0x07])
    host.send(NACK)
    again = host.next()
    assert again.kind == "frame" and again.data[2:] == bytes([0x32, 0x01, 0x06, 0x07])


def test_unknown_command_gets_the_error_frame(rig):
    sim, host = rig
    awake(host)
    host.send(command(0x60))
    assert host.next().kind == "ack"
    # 00 00 FF 01 FF 7F 81 00: a frame of one byte, 7F, with no TFI
    assert host.next().data == ERROR_FRAME[5:6] == b"\x7f"


def test_list_waits_for_a_card_and_a_tap_answers_it(rig, keys):
    sim, host = rig
    awake(host)
    host.send(command(0x4A, b"\x01\x00"))
    assert host.next().kind == "ack"
    assert host.next(0.2) is None                      # no card: the chip waits
    sim.tap(EmvCard.personalise(keys, PAN, expiry="3012", profile="visa-18"))
    answer = host.next()
    assert answer.data[:4] == b"\xd5\x4b\x01\x01"      # one target, number 1
    assert answer.data[4:7] == b"\x00\x04\x20"         # SENS_RES, SEL_RES: ISO 14443-4


def test_finite_retries_answer_no_target(rig):
    sim, host = rig
    awake(host)
    assert host.call(0x32, b"\x05\xff\x01\x02") == b""
    assert host.call(0x4A, b"\x01\x00") == b"\x00"
    host.send(command(0x4A, b"\x01\x03"))              # 106 kbit/s type B: not here
    assert host.next().kind == "ack"
    assert host.next().data == b"\x7f"


def test_an_ack_aborts_the_wait(rig):
    sim, host = rig
    awake(host)
    host.send(command(0x4A, b"\x01\x00"))
    assert host.next().kind == "ack"
    host.send(ACK)
    assert host.call(0x02) == bytes([0x32, 0x01, 0x06, 0x07])


def _listed(sim, host, keys, **kw):
    awake(host)
    card = EmvCard.personalise(keys, PAN, expiry="3012", profile="visa-18", **kw)
    sim.tap(card)
    assert host.call(0x4A, b"\x01\x00")[:2] == b"\x01\x01"
    return card


def test_apdus_through_in_data_exchange_and_release(rig, keys):
    sim, host = rig
    _listed(sim, host, keys)
    status, answer = host.apdu(select(PPSE))
    assert status == 0 and answer[-2:] == b"\x90\x00" and answer[:1] == b"\x6f"
    assert host.call(0x52, b"\x01") == b"\x00"
    assert sim.card is None                            # lifted after the beep
    status, _ = host.apdu(select(PPSE))
    assert status == 0x27                              # no target listed


def test_a_card_that_leaves_after_n_apdus(rig, keys):
    sim, host = rig
    sim.remove_after(2)                                # set before the tap: the next card's
    _listed(sim, host, keys)
    assert host.apdu(select(PPSE))[0] == 0
    assert host.apdu(select(bytes.fromhex("A0000000031010")))[0] == 0
    assert host.apdu(bytes.fromhex("80A8000002830000"))[0] == 0x01   # time-out: gone
    assert host.call(0x52, b"\x01") == b"\x00"
    host.send(command(0x4A, b"\x01\x00"))
    assert host.next().kind == "ack" and host.next(0.2) is None      # no card any more


def test_an_extended_frame_answer(rig, keys):
    sim, host = rig
    card = _listed(sim, host, keys)
    long_answer = bytes(298) + b"\x90\x00"
    card.apdu = lambda apdu: long_answer                # a card with a long answer
    host.send(command(0x40, b"\x01" + select(PPSE)))
    assert host.next().kind == "ack"
    answer = host.next()
    assert answer.kind == "frame" and answer.data == b"\xd5\x41\x00" + long_answer
    # and an extended command frame from the host is taken
    host.send(information_frame(b"\x40\x01" + bytes(300), tfi=0xD4))
    assert host.next().kind == "ack" and host.next().kind == "frame"


def test_garbage_until_the_next_tap(rig, keys):
    sim, host = rig
    _listed(sim, host, keys)
    sim.garbage()
    host.send(command(0x40, b"\x01" + select(PPSE)))
    time.sleep(0.2)
    noise = host.sock.recv(256)
    assert noise and ACK not in noise
    sim.tap(EmvCard.personalise(keys, PAN, expiry="3012", profile="visa-18"))
    host.reader = type(host.reader)()                  # the board starts afresh
    assert host.call(0x4A, b"\x01\x00")[:2] == b"\x01\x01"   # a sane reader again
    assert host.apdu(select(PPSE))[0] == 0


def test_a_paced_read_keeps_its_timeline(keys):
    board, reader = socket.socketpair()
    sim = Pn532Simulator(reader, baud=9600).start()
    host = Host(board)
    try:
        awake(host)
        sim.tap(EmvCard.personalise(keys, PAN, expiry="3012", profile="visa-18"))
        assert host.call(0x4A, b"\x01\x00")[:2] == b"\x01\x01"
        host.apdu(select(PPSE))
        host.apdu(select(bytes.fromhex("A0000000031010")))
        host.apdu(bytes.fromhex("80A800002383" "21" + "00" * 33 + "00"))
        host.apdu(bytes.fromhex("00B2010C00"))
        host.apdu(bytes.fromhex("00B2020C00"))
        line = sim.timeline
        assert line.pan_at is not None and line.wire_bits > 0
        # the bits between the activation and the PAN record, both ways (the time they
        # take is a benchmark's figure, benchmarks/tap_to_pan.py, not a test's)
        assert line.tap_at <= line.listed_at <= line.pan_at
    finally:
        sim.stop()
        board.close()
