# The PN532 HSU frames and driver (firmware/pn532.py) against a chip scripted byte by byte.
from fwtest import raises, FakeClock
from nfc_fakes import ACK, FakeCard, FakeChip, chip_frame
from pn532 import encode, PN532, ReaderError, CardGone

# what PN532.feed returns when a frame ends
K_ACK, K_NACK, FRAME, ERROR, BAD = 1, 2, 3, 4, 5


def feed_all(data, dec=None):
    dec = dec or PN532(None)
    kinds = []
    for b in data:
        k = dec.feed(b)
        if k:
            kinds.append((k, bytes(dec.buf[:dec.n]) if k == FRAME else None))
    return kinds


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


def test_encode_sam_configuration_as_the_manual_writes_it():
    out = bytearray(20)
    n = encode(out, 0xD4, 0x14, b"\x01\x14\x01")
    assert bytes(out[:n]) == h("00 00 FF 05 FB D4 14 01 14 01 02 00")


def test_encode_with_target_number():
    out = bytearray(20)
    n = encode(out, 0xD4, 0x40, b"\x00\xa4", 1)
    # LEN 5: D4 40 01 00 A4; DCS so that they and it sum to 0
    assert bytes(out[:n]) == h("00 00 FF 05 FB D4 40 01 00 A4 47 00")


def test_normal_frame_decoded():
    assert feed_all(chip_frame(0x14, b"")) == [(FRAME, b"\xd5\x15")]


def test_extended_frame_both_ways():
    data = bytes(i & 0xFF for i in range(300))
    out = bytearray(320)
    n = encode(out, 0xD5, 0x41, data)
    assert out[3] == 0xFF and out[4] == 0xFF and (out[5] << 8 | out[6]) == 302
    assert (out[5] + out[6] + out[7]) & 0xFF == 0
    dec = PN532(None)
    dec.buf = bytearray(400)
    assert feed_all(out[:n], dec) == [(FRAME, b"\xd5\x41" + data)]


def test_extended_frame_longer_than_the_buffer_is_dropped():
    out = bytearray(320)
    n = encode(out, 0xD5, 0x41, bytes(300))
    assert feed_all(out[:n]) == [(BAD, None)]
    # and the decoder is in step again for the next frame
    assert feed_all(bytes(out[:n]) + ACK) == [(BAD, None), (K_ACK, None)]


def test_ack_nack_and_error_frames():
    assert feed_all(ACK) == [(K_ACK, None)]
    assert feed_all(h("00 00 FF FF 00 00")) == [(K_NACK, None)]
    assert feed_all(h("00 00 FF 01 FF 7F 81 00")) == [(ERROR, None)]


def test_bad_lcs_and_bad_dcs_are_dropped():
    good = chip_frame(0x4A, b"\x00")
    bad_lcs = bytearray(good)
    bad_lcs[4] ^= 1
    bad_dcs = bytearray(good)
    bad_dcs[-2] ^= 0x40
    assert feed_all(bad_lcs) == [(BAD, None)]
    assert feed_all(bad_dcs) == [(BAD, None)]
    assert feed_all(bytes(bad_dcs) + good) == [(BAD, None), (FRAME, b"\xd5\x4b\x00")]


def test_garbage_between_frames_is_skipped():
    noise = h("13 37 FF 00 55 AA 00 00 00")
    stream = noise + ACK + noise + chip_frame(0x4A, b"\x00") + noise
    assert feed_all(stream) == [(K_ACK, None), (FRAME, b"\xd5\x4b\x00")]


def test_a_host_frame_is_not_an_answer():
    out = bytearray(20)
    n = encode(out, 0xD4, 0x14, b"\x01")
    assert feed_all(out[:n]) == [(BAD, None)]


def test_zero_length_frame_is_bad():
    assert feed_all(h("00 00 FF 00 00 00 00")) == [(BAD, None)]


def reader(chip, clock=None):
    clock = clock or FakeClock()
    return PN532(chip, clock=clock, sleep=clock.advance), clock


def test_begin_wakes_then_configures():
    chip = FakeChip(asleep=True)
    r, clock = reader(chip)
    r.begin()
    assert r.started
    assert chip.raw[:2] == b"\x55\x55" and chip.raw[2:16] == bytes(14)
    assert clock() >= 20   # the pause before the first command
    assert [c for c, _ in chip.commands] == [0x14, 0x32]
    assert chip.commands[1][1] == b"\x05\xff\x01\x01"


def test_detect_no_card_then_a_card():
    chip = FakeChip()
    r, _ = reader(chip)
    assert r.detect() == 0
    chip.card = FakeCard()
    assert r.detect() == 1
    assert chip.commands[-1] == (0x4A, b"\x01\x00")


def test_tag_without_iso_dep_is_refused_at_idle():
    chip = FakeChip(FakeCard())
    chip.not_iso_dep = True
    r, clock = reader(chip)
    assert r.poll(clock()) == "Not supported"
    assert chip.commands[-1] == (0x52, b"\x01")   # let go


def test_apdu_answer_and_target_number():
    chip = FakeChip(FakeCard())
    r, _ = reader(chip)
    answer = r.apdu(1, h("00 A4 04 00 0E") + b"2PAY.SYS.DDF01" + b"\x00")
    assert bytes(answer[-2:]) == b"\x90\x00"
    cmd, data = chip.commands[-1]
    assert cmd == 0x40 and data[0] == 1 and data[1:3] == b"\x00\xa4"


def test_longest_apdu_goes_in_an_extended_frame():
    chip = FakeChip(FakeCard())
    r, _ = reader(chip)
    apdu = h("80 A8 00 00 FF") + bytes(range(255)) + b"\x00"   # 261 bytes
    r.apdu(1, apdu)
    assert chip.commands[-1] == (0x40, b"\x01" + apdu)
    raises(ReaderError, r.apdu, 1, bytes(263))


def test_silent_reader_is_a_reader_error():
    chip = FakeChip(FakeCard())
    chip.silent = True
    r, clock = reader(chip)
    start = clock()
    raises(ReaderError, r.begin)
    assert clock() - start >= 500   # it waited for the ACK, then gave up
    assert not r.started


def test_garbage_answers_are_a_reader_error():
    chip = FakeChip(FakeCard())
    chip.garbage = True
    r, _ = reader(chip)
    raises(ReaderError, r.detect)


def test_bad_checksum_is_asked_again_with_nack():
    chip = FakeChip(FakeCard())
    chip.bad_dcs = 1
    r, _ = reader(chip)
    assert r.detect() == 1
    chip.bad_dcs = 3   # the answer and both repeats damaged
    raises(ReaderError, r.detect)


def test_card_leaving_mid_read_is_card_gone():
    chip = FakeChip(FakeCard())
    chip.gone_after = 1
    r, _ = reader(chip)
    r.apdu(1, h("00 A4 04 00 0E") + b"2PAY.SYS.DDF01" + b"\x00")
    raises(CardGone, r.apdu, 1, h("00 B2 01 0C 00"))


def test_answer_to_another_command_is_a_reader_error():
    class Confused(FakeChip):
        def _handle(self, cmd, data):
            return chip_frame(0x14, b"")
    r, _ = reader(Confused(FakeCard()))
    raises(ReaderError, r.detect)


def test_stale_bytes_before_a_command_are_dropped():
    chip = FakeChip(FakeCard())
    r, _ = reader(chip)
    chip.out.extend(ACK + chip_frame(0x4A, b"\x00"))   # a late answer to an earlier look
    assert r.detect() == 1


def test_idle_poll_paces_itself_and_says_a_failure_once():
    chip = FakeChip()
    r, clock = reader(chip)
    assert r.poll(clock()) is None          # woken, configured, no card
    assert r.started
    n = len(chip.commands)
    assert r.poll(clock()) is None          # too soon: no command sent
    assert len(chip.commands) == n
    chip.silent = True
    clock.advance(300)
    assert r.poll(clock()) == "Reader error"
    clock.advance(5000)
    assert r.poll(clock()) is None          # still failing: said once already
    chip.silent = False
    chip.card = FakeCard()
    clock.advance(5000)
    assert r.poll(clock()) == 1             # woken again, and the card is there
    assert chip.commands[-3][0] == 0x14


def test_wipe_clears_what_the_card_said():
    chip = FakeChip(FakeCard())
    r, _ = reader(chip)
    r.apdu(1, h("00 B2 01 0C 00"))
    r.wipe()
    assert not any(r.buf) and not any(r.rx) and not any(r.out)

