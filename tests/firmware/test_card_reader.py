# Card reader driver, the stream side: record assembly across reads, resynchronisation
# after noise and over-long records, counters, and that no track data stays behind.
import gc

from card_reader import CardReader, Card, CardError, MAX_RECORD
from fwtest import ScriptedStream
from cardtest import (DISCRETIONARY, pan_of, frame, record, reader_for, results, one,
                      reason)


def test_good_swipe():
    pan = pan_of(16)
    card = one(record(pan, "2612", "201"))
    assert isinstance(card, Card)
    assert card.pan == pan and card.expiry == "2612" and card.service_code == "201"


def test_nothing_until_a_record_is_complete():
    data = record(pan_of(16))
    reader = reader_for([data[:-1]])
    assert reader.poll() is None
    reader.stream.feed(data[-1:])
    assert isinstance(reader.poll(), Card)
    assert reader.poll() is None


def test_split_byte_by_byte():
    pan = pan_of(19)
    data = record(pan)
    reader = reader_for([data[i:i + 1] for i in range(len(data))])
    got = results(reader, limit=len(data) + 2)
    assert len(got) == 1 and got[0].pan == pan


def test_two_records_in_one_read_come_out_one_per_poll():
    a, b = pan_of(16), pan_of(13, "5")
    reader = reader_for([record(a) + record(b)])
    assert reader.poll().pan == a
    assert reader.poll().pan == b
    assert reader.poll() is None


def test_noise_before_stx_is_ignored():
    pan = pan_of(16)
    card = one(b"\x00\xff;1234=?\x03\x41" + record(pan))
    assert card.pan == pan


def test_bad_lrc_is_read_error():
    data = bytearray(record(pan_of(16)))
    data[-1] ^= 0x01
    r = one(bytes(data))
    assert r.reason == "lrc" and r.message == "Read error" and r.retry


def test_flipped_track_bit_is_caught_by_lrc():
    data = bytearray(record(pan_of(16)))
    data[5] ^= 0x04
    assert reason(bytes(data)) == "lrc"


def test_error_record():
    r = one(frame(b"E"))
    assert r.reason == "no_read" and r.message == "Read error" and r.retry


def test_overlong_record_dropped_then_good_one():
    pan = pan_of(16)
    long_track = b";" + b"1" * MAX_RECORD + b"?"
    reader = reader_for([frame(long_track) + record(pan)])
    got = results(reader)
    assert [type(r) for r in got] == [CardError, Card]
    assert got[0].reason == "too_long" and got[1].pan == pan
    assert reader.overlong == 1


def test_longest_allowed_record_fits():
    # MAX_RECORD bytes in all: STX + content + ETX + LRC
    pan = pan_of(19)
    disc = "0" * (MAX_RECORD - 3 - len(";%s=2612201?" % pan))
    data = record(pan, disc=disc)
    assert len(data) == MAX_RECORD
    assert one(data).pan == pan
    assert reason(record(pan, disc=disc + "0")) == "too_long"


def test_stx_inside_a_record_starts_a_new_one():
    pan = pan_of(16)
    cut = record(pan_of(19))[:20]
    reader = reader_for([cut + record(pan)])
    got = results(reader)
    assert len(got) == 1 and got[0].pan == pan
    assert reader.restarts == 1


def test_discretionary_data_not_retained():
    pan = pan_of(16)
    data = record(pan, disc=DISCRETIONARY)
    reader = reader_for([data[:7], data[7:]])
    card = results(reader)[0]
    assert reader.buf == bytearray(len(reader.buf))
    assert reader.rx == bytearray(len(reader.rx))
    assert reader.n == 0 and reader.lrc == 0
    for value in (card.pan, card.expiry, card.service_code):
        assert DISCRETIONARY not in value
    assert sorted(k for k in card.__dict__) == ["expiry", "pan", "service_code"]


def test_buffers_wiped_after_errors_too():
    for data in (record(pan_of(16), "2613"), frame(b";" + b"7" * 60 + b"?"),
                 record(pan_of(16))[:-1] + b"\x00"):
        reader = reader_for([data])
        results(reader)
        assert reader.buf == bytearray(len(reader.buf))
        assert reader.rx == bytearray(len(reader.rx))


def test_repr_masks_the_pan():
    pan = pan_of(16)
    card = one(record(pan))
    text = repr(card)
    assert pan not in text and pan[-4:] in text and pan[:6] in text


def test_default_clock_is_the_wallclock():
    import wallclock
    assert CardReader(ScriptedStream()).now is wallclock.now


def test_stream_errors_are_no_data():
    class DeadStream:
        def readinto(self, buf):
            raise OSError(5)

    assert CardReader(DeadStream(), now=lambda: None).poll() is None


def test_counters():
    reader = reader_for([record(pan_of(16)) + frame(b"E") + record(pan_of(16))[:-1] + b"\x00"])
    results(reader)
    assert reader.records == 3 and reader.lrc_errors == 1


class _ByteStream:
    # hands out a preallocated buffer a few bytes at a time without allocating
    def __init__(self, data, step):
        self.data = bytearray(data)
        self.pos = 0
        self.step = step

    def readinto(self, buf):
        n = 0
        while n < self.step and n < len(buf) and self.pos < len(self.data):
            buf[n] = self.data[self.pos]
            n += 1
            self.pos += 1
        return n


def test_no_allocation_per_byte():
    if not hasattr(gc, "mem_alloc"):   # CPython: heap figures come from MicroPython
        return

    def cost(noise):
        data = b"\x55" * noise + record(pan_of(16))
        reader = CardReader(_ByteStream(data, 3), now=lambda: None)
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        while reader.poll() is None:
            pass
        used = gc.mem_alloc() - before
        gc.enable()
        return used

    small, large = cost(10), cost(600)
    assert large == small, (small, large)
