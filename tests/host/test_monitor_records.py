"""The frame monitor (posbridge/monitor.py) and its tap (tap.py) on what a bridge never
sends: garbage records, garbled and hostile frames, ISO 8583 messages that do not decode
or carry card data where none belongs. Whatever comes, the monitor prints a line that
says so, and never a full PAN, a PIN block, ICC data or track data."""
import json
import os
import socket
import stat
import threading

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from posbridge.cli import main
from posbridge.link import cbor_profile
from posbridge.link import iso8583_spec as spec
from posbridge.link import protocol as p
from posbridge.link.framing import encode_frame
from posbridge.link.readable import iso_message, link_frame
from posbridge.monitor import MAX_RECORD, Lines, Monitor
from posbridge.tap import Tap

PAN = "4761730000000011"
TRACK2 = bytes.fromhex("4761730000000011D30122011234567800000F")
PIN_BLOCK = bytes(range(0xA0, 0xB0))



class Printed:
    def __init__(self):
        self.lines = []
        self.monitor = Monitor(lambda text: self.lines.append(text.plain), acks=True)

    def serial(self, data, direction="in", src="board0"):
        self.monitor.record(json.dumps({"at": 1.5, "ch": "serial", "src": src,
                                        "dir": direction, "hex": data.hex()}).encode())

    def iso(self, data, direction="out"):
        self.monitor.record(json.dumps({"at": 1.5, "ch": "iso", "src": "host:1",
                                        "dir": direction, "hex": data.hex()}).encode())

    @property
    def text(self):
        return "\n".join(self.lines)


def _clean(text):
    for secret in (PAN, PIN_BLOCK.hex(), PIN_BLOCK.hex().upper(), TRACK2.hex(),
                   TRACK2.hex().upper(), "3012"):
        assert secret not in text, secret


def _frame(mtype, fields, seq=9):
    body = cbor_profile.encode(fields)
    return encode_frame(bytes((p.PROTOCOL_VERSION, mtype, seq, 0)) + body)


@pytest.mark.parametrize("line", [
    b"not json", b"[1, 2]", b'{"ch": "serial"}', b'{"ch": "serial", "dir": "in", "hex": "zz"}',
    b'{"ch": "serial", "dir": "sideways", "hex": ""}', b'{"ch": "radio"}',
    b'{"ch": "dropped", "n": "many"}', b'{"ch": "iso", "dir": "in", "hex": 5}',
    b"\xff\xfe" + PAN.encode(), json.dumps({"ch": PAN}).encode()])
def test_a_record_the_monitor_cannot_read_is_said_so(line):
    out = Printed()
    out.monitor.record(line)
    assert out.monitor.counts["unreadable"] == 1
    assert "unreadable record" in out.text
    _clean(out.text)


def test_garbled_frames_are_said_so_and_the_next_good_one_shown():
    out = Printed()
    hello = _frame(p.HELLO, {1: 1, 2: "0.1.0", 3: "T0001"})
    broken = hello[:-3] + bytes([hello[-3] ^ 0x40]) + hello[-2:]
    out.serial(broken + b"\x00\x07\x07\x00" + b"\x01" * 600 + b"\x00")
    out.serial(hello[:5])          # a frame cut across two reads
    out.serial(hello[5:])
    assert out.monitor.counts["garbled"] == 3
    assert "garbled frame: CRC mismatch" in out.text
    assert "too long for a frame" in out.text
    assert "board0 board>bridge HELLO seq=9" in out.text and "terminal_id = 'T0001'" in out.text


def test_a_hostile_frame_shows_no_card_data():
    """A purchase request with the card's data where the schema has other things: the
    PAN as text in an unknown key, track 2 as bytes, ICC data holding 57 and 5A."""
    icc = bytes([0x57, len(TRACK2)]) + TRACK2 + bytes([0x5A, 8]) + bytes.fromhex(PAN)
    fields = {1: "T0001", 2: 1, 3: 1, 4: {1: PAN, 2: "3012", 3: "201", 9: TRACK2},
              5: PIN_BLOCK, 6: bytes(12), 7: bytes(8), 8: 100, 9: 156, 10: "M", 11: "N",
              19: icc, 40: PAN, 41: TRACK2, 42: bytes.fromhex(PAN)}
    out = Printed()
    out.serial(_frame(p.PURCHASE_REQUEST, fields))
    assert "PURCHASE_REQUEST" in out.text
    assert "icc = '<" in out.text and "pin_block = '<16 bytes>'" in out.text
    _clean(out.text)
    out.serial(_frame(p.BALANCE_REQUEST, {1: "T0001", 43: [TRACK2, PAN],
                                          44: {1: TRACK2, 2: PAN}}))
    assert "BALANCE_REQUEST" in out.text
    _clean(out.text)
    # and in the board's status, a map of counters, a PAN where a counter should be
    out.serial(_frame(p.STATUS, {1: 1, 2: 2, 3: "idle", 4: {1: PAN, 2: TRACK2}}))
    _clean(out.text)


def test_an_error_s_text_is_masked():
    out = Printed()
    out.serial(_frame(p.ERROR, {1: 2, 2: f"card {PAN} refused", 3: 0x12}), "out")
    assert "476173******0011" in out.text and "bridge>board ERROR" in out.text
    _clean(out.text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=700))
def test_any_bytes_on_the_serial_link_leave_the_monitor_standing(data):
    out = Printed()
    out.serial(data)
    out.serial(b"\x00" + PAN.encode() + data + b"\x00")
    _clean(out.text)


def _iso(fields):
    return spec.pack(fields)


def test_iso_sensitive_fields_masked_or_their_length():
    data = _iso({"t": "0200", "2": PAN, "3": "000000", "4": "000000001250", "11": "000001",
                 "14": "3012", "40": "201", "43": f"SHOP {PAN}".ljust(40), "52": PIN_BLOCK.hex(),
                 "55": (b"\x57" + bytes([len(TRACK2)]) + TRACK2).hex()})
    message = iso_message(data)
    shown = {number: value for number, _, value in message["fields"]}
    assert message["mti"] == "0200" and message["problem"] is None
    assert shown[2] == "476173******0011" and shown[4] == "1250"
    assert shown[14] == shown[40] == "<hidden>"
    assert shown[52] == "<16 bytes>" and shown[55] == f"<{len(TRACK2) + 2} bytes>"
    assert shown[43] == "SHOP 476173******0011"
    out = Printed()
    out.iso(data)
    assert "bridge>host 0200 purchase" in out.text
    _clean(out.text)


def test_an_iso_message_that_does_not_decode_is_said_so_with_what_came_before():
    good = _iso({"t": "0100", "2": PAN, "3": "310000", "52": PIN_BLOCK.hex()})
    message = iso_message(good[:-5])
    assert message["problem"].startswith("undecodable")
    assert message["mti"] == "0100"
    out = Printed()
    for data in (good[:-5], b"", b"\x01", PAN.encode(), b"\x08\x00" + b"\xff" * 20):
        out.iso(data, "in")
    assert out.monitor.counts["undecodable"] == 5
    _clean(out.text)


def test_drops_are_shown_and_counted():
    out = Printed()
    out.monitor.record(b'{"ch": "dropped", "n": 42}')
    assert "42 records dropped" in out.text and out.monitor.counts["dropped"] == 42


def test_link_frame_of_a_short_or_foreign_payload():
    assert "shorter" in link_frame(b"\x01\x02")["problem"]
    assert "protocol version 9" in link_frame(b"\x09\x01\x00\x00")["problem"]
    assert link_frame(b"\x01\x00\x05\x00")["name"] == "ACK"


def test_an_over_long_record_is_cut_and_the_stream_goes_on():
    lines = Lines()
    got = lines.feed(b"x" * (MAX_RECORD + 10))
    got += lines.feed(b"yyy\n" + b'{"ch": "dropped", "n": 1}\n')
    assert len(got) == 2 and len(got[0]) == MAX_RECORD and got[1].startswith(b"{")


def test_the_tap_is_its_owner_s_only_and_a_stale_socket_is_replaced(tmp_path):
    path = str(tmp_path / "tap.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()                       # a bridge that died left its socket behind
    tap = Tap(path).start()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
        for _ in range(250):
            if tap.monitors:
                break
            threading.Event().wait(0.02)
        tap.serial("b")("rx", b"\x00\x01")
        conn.settimeout(5)
        record = json.loads(conn.makefile("rb").readline())
        assert (record["ch"], record["src"], record["dir"], record["hex"]) == \
            ("serial", "b", "in", "0001")
        conn.close()
        with pytest.raises(OSError):    # a live tap is never taken over
            Tap(path).start()
    finally:
        tap.close()
    assert not os.path.exists(path)


def test_monitor_command_without_a_tap(tmp_path):
    result = CliRunner().invoke(main, ["monitor", "--once", "--tap",
                                       str(tmp_path / "none.sock")])
    assert result.exit_code != 0 and "no tap at" in result.output


def test_a_tap_naming_ports_without_end_holds_no_more_cutters():
    out = Printed()
    for n in range(600):
        out.serial(b"\x00\x01\x02", src=f"port{n}")
    assert len(out.monitor._splitters) <= 256
    assert out.monitor.counts["unreadable"] == 0
