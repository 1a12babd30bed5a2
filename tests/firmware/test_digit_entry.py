# PIN pad driver: key events, PIN entry (limits, clear, backspace, cancel, timeout from
# the last key), masked echo, and that every buffer that held a digit is wiped.
# The PINs are test data only.
import gc

from keypad import KeyReader
from digit_entry import AmountEntry, PinEntry, CANCEL, TIMEOUT
from fwtest import ScriptedStream, FakeClock


def entry(keys=b"", **kw):
    clock = FakeClock(1000)
    reader = KeyReader(ScriptedStream([keys] if keys else []))
    return PinEntry(reader, clock, **kw), reader, clock


def zeroed(buf):
    return buf == bytearray(len(buf))


def test_key_reader_passes_keys_and_ignores_other_bytes():
    reader = KeyReader(ScriptedStream([b"1\x00a9C", b"\r\nBXE5"]))
    got = []
    while True:
        key = reader.poll()
        if key is None:
            break
        got.append(key)
    assert bytes(got) == b"19CBXE5"
    assert zeroed(reader.rx)


def test_key_reader_flush_and_dead_stream():
    reader = KeyReader(ScriptedStream([b"123", b"45"]))
    reader.flush()
    assert reader.poll() is None

    class DeadStream:
        def readinto(self, buf):
            raise OSError(5)

    assert KeyReader(DeadStream()).poll() is None


def test_pin_of_4_and_of_12_digits():
    for pin in (b"1234", b"123456789012"):
        pe, reader, _ = entry(pin + b"E")
        result = pe.poll()
        assert result[0] == "pin" and result[1] == bytearray(pin)
        assert type(result[1]) is bytearray and len(result[1]) == len(pin)
        assert zeroed(pe.buf) and zeroed(reader.rx) and pe.count == 0


def test_digits_beyond_max_are_ignored():
    pe, _, _ = entry(b"1234567890123456E")
    assert pe.poll() == ("pin", bytearray(b"123456789012"))
    pe, _, _ = entry(b"1234567E", max_len=6)
    assert pe.poll() == ("pin", bytearray(b"123456"))


def test_too_short_keeps_entering_and_flags():
    pe, reader, _ = entry(b"123E")
    assert pe.poll() is None
    assert pe.too_short and pe.count == 3 and pe.masked() == "***"
    reader.stream.feed(b"4")
    assert pe.poll() is None and not pe.too_short
    reader.stream.feed(b"E")
    assert pe.poll() == ("pin", bytearray(b"1234"))


def test_clear_erases_everything_and_wipes():
    pe, reader, _ = entry(b"98765C")
    assert pe.poll() is None
    assert pe.count == 0 and zeroed(pe.buf) and pe.masked() == ""
    reader.stream.feed(b"2468E")
    assert pe.poll() == ("pin", bytearray(b"2468"))


def test_backspace_erases_the_last_digit():
    pe, reader, _ = entry(b"B12345B")
    assert pe.poll() is None
    assert pe.count == 4 and pe.buf[4] == 0
    reader.stream.feed(b"BB78E")
    assert pe.poll() == ("pin", bytearray(b"1278"))


def test_cancel_wipes():
    pe, reader, _ = entry(b"5555X")
    assert pe.poll() == CANCEL
    assert zeroed(pe.buf) and zeroed(reader.rx) and pe.count == 0
    assert pe.poll() is None  # the result is given once


def test_timeout_counts_from_the_last_key():
    pe, reader, clock = entry(timeout_ms=30000)
    clock.advance(20000)
    reader.stream.feed(b"12")
    assert pe.poll() is None
    clock.advance(29999)
    assert pe.poll() is None  # 49.999 s since the start, but not 30 s since a key
    clock.advance(1)
    assert pe.poll() == TIMEOUT
    assert zeroed(pe.buf) and pe.count == 0


def test_timeout_with_no_key_at_all():
    pe, _, clock = entry(timeout_ms=500)
    clock.advance(499)
    assert pe.poll() is None
    clock.advance(1)
    assert pe.poll() == TIMEOUT


def test_ignored_bytes_do_not_hold_off_the_timeout():
    pe, reader, clock = entry(timeout_ms=1000)
    clock.advance(999)
    reader.stream.feed(b"\x00\xffz")
    clock.advance(1)
    assert pe.poll() == TIMEOUT


def test_masked_echo_and_change_flag():
    pe, reader, _ = entry()
    assert pe.take_changed() and not pe.take_changed()
    for i, key in enumerate(b"1357"):
        reader.stream.feed(bytes((key,)))
        pe.poll()
        assert pe.masked() == "*" * (i + 1) and pe.take_changed()
    pe.poll()
    assert not pe.take_changed()
    reader.stream.feed(b"B")
    pe.poll()
    assert pe.masked() == "***" and pe.take_changed()


def test_keys_after_enter_wait_for_the_next_reader_of_keys():
    pe, reader, _ = entry(b"1234E99")
    assert pe.poll()[0] == "pin"
    assert reader.poll() == ord("9")


def test_restart_for_a_second_try():
    pe, reader, clock = entry(b"1111E")
    assert pe.poll()[0] == "pin"
    clock.advance(60000)
    pe.restart()
    assert pe.poll() is None
    reader.stream.feed(b"2222E")
    assert pe.poll() == ("pin", bytearray(b"2222"))


def test_length_limits_checked():
    try:
        entry(min_len=5, max_len=4)
    except ValueError:
        return
    raise AssertionError("min_len > max_len accepted")


def test_pin_goes_to_pinblock_and_is_wiped_there():
    import pinblock
    pe, _, _ = entry(b"1234E")
    kind, pin = pe.poll()
    block = pinblock.make_block(b"\x11" * 16, pin, "4111111111111111")
    assert len(block) == 16 and zeroed(pin)


def amount_entry(keys=b"", max_amount=9999999):
    clock = FakeClock(1000)
    reader = KeyReader(ScriptedStream([keys] if keys else []))
    return AmountEntry(reader, clock, max_amount), reader, clock


def test_amount_in_minor_units_on_enter():
    ae, reader, _ = amount_entry(b"1250E")
    assert ae.poll() == ("amount", 1250)
    assert zeroed(ae.buf) and zeroed(reader.rx) and ae.count == 0


def test_amount_leading_zeros_and_digits_past_the_maximum_are_ignored():
    ae, reader, _ = amount_entry(b"0012345", max_amount=5000)
    assert ae.poll() is None and ae.value() == 1234   # the 5 would make 12345
    reader.stream.feed(b"B7E")
    assert ae.poll() == ("amount", 1237)
    ae, _, _ = amount_entry(b"99999999E")
    assert ae.poll() == ("amount", 9999999)           # the maximum itself is allowed


def test_amount_enter_with_nothing_keyed_keeps_entering():
    ae, reader, _ = amount_entry(b"E0E")
    assert ae.poll() is None and ae.count == 0
    reader.stream.feed(b"5E")
    assert ae.poll() == ("amount", 5)


def test_amount_clear_cancel_and_timeout():
    ae, reader, clock = amount_entry(b"987C")
    assert ae.poll() is None and ae.value() == 0 and zeroed(ae.buf)
    reader.stream.feed(b"42X")
    assert ae.poll() == CANCEL and zeroed(ae.buf)
    ae, reader, clock = amount_entry(b"42")
    assert ae.poll() is None
    clock.advance(60000)
    assert ae.poll() == TIMEOUT and zeroed(ae.buf)


def test_amount_changes_are_flagged_for_the_screen():
    ae, reader, _ = amount_entry()
    assert ae.take_changed() and not ae.take_changed()
    reader.stream.feed(b"3")
    ae.poll()
    assert ae.take_changed() and ae.value() == 3
    reader.stream.feed(b"0")        # 30: a zero after a digit counts
    ae.poll()
    assert ae.take_changed() and ae.value() == 30
