# Seeded fuzzing of what the board reads from a contactless card and its reader: the
# BER-TLV parser, the PN532 frame decoder and driver, and the EMV read on mangled card
# answers. Under MicroPython (-X heapsize=64k) as under CPython, every input ends in a
# value or in the module's documented error: never another exception, never a
# MemoryError.
from fwtest import FakeClock
from nfc_fakes import FakeCard, FakeChip, chip_frame, ACK
from pn532 import PN532, ReaderError, CardGone, encode
from tlv import collect, TLVError
import emv

_WANTED = (0x5A, 0x57, 0x9F26, 0x9F10, 0xBF0C, 0x70, 0x77, 0x80, 0xDF8116, 0x61)


class Rng:
    """xorshift32: the same numbers under CPython and MicroPython for a seed."""

    def __init__(self, seed):
        self.x = seed

    def next(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def below(self, n):
        return self.next() % n

    def bytes(self, n):
        return bytes(self.next() & 0xFF for _ in range(n))


def mutate(rng, data):
    """data with one to four random changes: a bit flipped, a byte set, bytes cut
    out, bytes inserted, or the end cut off."""
    data = bytearray(data)
    for _ in range(1 + rng.below(4)):
        op = rng.below(5)
        i = rng.below(len(data) + 1)
        if op == 0 and i < len(data):
            data[i] ^= 1 << rng.below(8)
        elif op == 1 and i < len(data):
            data[i] = rng.below(256)
        elif op == 2:
            data = data[:i] + data[i + 1 + rng.below(4):]
        elif op == 3:
            data = data[:i] + rng.bytes(1 + rng.below(4)) + data[i:]
        else:
            data = data[:i]
    return bytes(data)


def card_answers():
    card = FakeCard()
    return [card.answers[k][:-2] for k in card.answers]


def test_tlv_parser_on_random_and_mangled_input():
    rng = Rng(0x5EED1)
    seeds = card_answers()
    outcomes = [0, 0]
    for i in range(4000):
        if i & 1:
            data = rng.bytes(rng.below(64))
        else:
            data = mutate(rng, seeds[rng.below(len(seeds))])
        try:
            found = collect(data, 0, len(data), dict((tag, None) for tag in _WANTED))
            for tag in _WANTED:
                v = found[tag]
                assert v is None or isinstance(v, (bytearray, tuple))
            outcomes[0] += 1
        except TLVError:
            outcomes[1] += 1
    assert outcomes[0] > 100 and outcomes[1] > 100   # both ends were reached


def test_frame_decoder_on_random_and_mangled_streams():
    rng = Rng(0xF4A3E)
    out = bytearray(320)
    frames = [ACK, b"\x00\x00\xff\xff\x00\x00", b"\x00\x00\xff\x01\xff\x7f\x81\x00",
              chip_frame(0x4A, b"\x00"),
              chip_frame(0x40, b"\x00" + bytes(range(200)))]
    n = encode(out, 0xD5, 0x41, bytes(270))
    frames.append(bytes(out[:n]))
    dec = PN532(None)
    seen = [0] * 6
    for i in range(3000):
        if i % 3 == 0:
            data = rng.bytes(rng.below(80))
        else:
            data = mutate(rng, frames[rng.below(len(frames))]) + frames[rng.below(len(frames))]
        for b in data:
            kind = dec.feed(b)
            assert 0 <= kind <= 5
            seen[kind] += 1
            assert 0 <= dec.n <= len(dec.buf) == 264
    assert all(seen[1:])   # ACK, NACK, FRAME, ERROR and BAD each came out


class NoisyChip(FakeChip):
    """A chip whose answers are mangled, or replaced by random bytes."""

    def __init__(self, rng, card):
        FakeChip.__init__(self, card)
        self.rng = rng

    def _answer(self, answer):
        r = self.rng.below(3)
        if r == 0:
            self.out.extend(mutate(self.rng, answer))
        elif r == 1:
            self.out.extend(self.rng.bytes(self.rng.below(40)))
        else:
            self.out.extend(answer)


def test_driver_against_a_chip_answering_noise():
    rng = Rng(0xC41B)
    outcomes = [0, 0, 0]
    for i in range(400):
        chip = NoisyChip(rng, FakeCard())
        clock = FakeClock()
        reader = PN532(chip, clock=clock, sleep=clock.advance)
        try:
            if i & 1:
                reader.detect()
            else:
                reader.apdu(1, b"\x00\xa4\x04\x00\x0e2PAY.SYS.DDF01\x00")
            outcomes[0] += 1
        except ReaderError:
            outcomes[1] += 1
        except CardGone:
            outcomes[2] += 1
    assert outcomes[0] and outcomes[1]


class Term:
    cvm_limit = 100000


class MangledCard(FakeCard):
    def __init__(self, rng):
        FakeCard.__init__(self)
        self.rng = rng

    def apdu(self, apdu):
        answer = FakeCard.apdu(self, apdu)
        return mutate(self.rng, answer) if self.rng.below(3) == 0 else answer


def test_emv_read_of_mangled_card_answers():
    rng = Rng(0xE3F)
    read = refused = 0
    for _ in range(600):
        chip = FakeChip(MangledCard(rng))
        clock = FakeClock()
        reader = PN532(chip, clock=clock, sleep=clock.advance)
        try:
            got = emv.read(reader, 1, 1250, Term())
            assert len(got) == 5 and len(got[4]) <= 255
            read += 1
        except (emv.CardError, ReaderError, CardGone):
            refused += 1
    assert read and refused
