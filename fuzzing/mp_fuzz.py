# Runs under MicroPython (-X heapsize=64k): `micropython mp_fuzz.py TARGET FILE`.
# FILE holds the inputs, each as a 2-byte big-endian length then its bytes (inputs come
# from a file, never from arguments: the unix port dies on long arguments). Every
# input must end in a value or the target's documented error; anything else, a
# MemoryError included, is printed as "CRASH index type message" and the run goes on.
# The last line is "DONE target=... inputs=... values=... errors=... crashes=...
# max_us=... slowest=... heap_free=... hist=..." (hist: inputs per time bucket, bucket b
# holding the times of b bits in µs, so bucket 10 is 512-1023 µs).
import gc
import sys
import time

MAX_INPUT = 1024


def cbor_target():
    import cbor

    def run(data):
        try:
            value = cbor.decode(data)
        except cbor.CBORError:
            return False
        # only the deterministic form decodes, so encoding the value gives the input back
        if cbor.encode(value) != bytes(data):
            raise AssertionError("decoded, but encodes to other bytes")
        return True
    return run


def framing_target():
    import framing
    dec = framing.FrameDecoder()
    got = []

    def on_frame(payload):
        if not payload or len(payload) > framing.MAX_PAYLOAD:
            raise AssertionError("frame of %d bytes delivered" % len(payload))
        got.append(payload)

    def run(data):
        del got[:]
        # the stream as a UART would give it, in pieces, with a delimiter to close it
        n = len(data)
        cut = (n * 7) // 13
        dec.feed(data[:cut], cut, on_frame)
        dec.feed(data[cut:], n - cut, on_frame)
        dec.feed(b"\x00", 1, on_frame)
        for payload in got:
            # what was delivered is what a sender framed
            if framing.encode_frame(payload)[1:] not in bytes(data) + b"\x00":
                raise AssertionError("delivered a payload no frame in the stream holds")
        return bool(got)
    return run


class _Stream:
    """readinto() giving the input in pieces of up to 7 bytes, then None: a UART."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def readinto(self, buf):
        n = min(len(buf), 7, len(self.data) - self.pos)
        if n <= 0:
            return None
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def card_target():
    import card_reader

    def run(data):
        reader = card_reader.CardReader(_Stream(data), now=lambda: 1767225600)  # 2026-01-01
        cards = 0
        for _ in range(len(data) + 1):
            got = reader.poll()
            if got is None:
                break
            if isinstance(got, card_reader.Card):
                pan = got.pan
                if not (12 <= len(pan) <= 19 and pan.isdigit()
                        and card_reader.luhn_ok(pan.encode(), 0, len(pan))):
                    raise AssertionError("a card with a bad PAN")
                cards += 1
            elif not isinstance(got, card_reader.CardError):
                raise AssertionError("poll gave " + type(got).__name__)
        return cards > 0
    return run


_WANTED = (0x5A, 0x57, 0x9F26, 0x9F10, 0x9F36, 0xBF0C, 0x70, 0x77, 0x80, 0x61, 0x4F, 0x87)


def tlv_target():
    import tlv

    def run(data):
        try:
            found = tlv.collect(data, 0, len(data), dict((t, None) for t in _WANTED))
        except tlv.TLVError:
            return False
        for t in _WANTED:
            v = found[t]
            if not (v is None or isinstance(v, (bytearray, tuple))):
                raise AssertionError("collect gave " + type(v).__name__)
        return True
    return run


def pn532_target():
    import pn532
    dec = pn532.PN532(None)   # its frame decoder: feed() returns 3 for a chip's frame
    size = len(dec.buf)

    def run(data):
        dec.state = 0          # out of any frame, as after the start code is lost
        dec.last = 1
        frames = 0
        for b in data:
            kind = dec.feed(b)
            if not 0 <= kind <= 5 or not 0 <= dec.n <= size:
                raise AssertionError("feed gave %d with %d bytes" % (kind, dec.n))
            if kind == 3:
                frames += 1
        return frames > 0
    return run


TARGETS = {"cbor": cbor_target, "framing": framing_target, "card": card_target,
           "tlv": tlv_target, "pn532": pn532_target}


def main():
    name, path = sys.argv[1], sys.argv[2]
    run = TARGETS[name]()
    buf = bytearray(MAX_INPUT)
    mv = memoryview(buf)
    head = bytearray(2)
    count = values = errors = crashes = 0
    max_us = slowest = 0
    hist = [0] * 32
    with open(path, "rb") as f:
        while f.readinto(head) == 2:
            n = (head[0] << 8) | head[1]
            if n > MAX_INPUT or f.readinto(mv[:n]) != n:
                print("BAD INPUT FILE at", count)
                sys.exit(2)
            data = bytes(mv[:n])
            t0 = time.ticks_us()
            try:
                if run(data):
                    values += 1
                else:
                    errors += 1
            except MemoryError:
                crashes += 1
                data = None
                gc.collect()
                print("CRASH", count, "MemoryError", gc.mem_free())
            except Exception as exc:
                crashes += 1
                print("CRASH", count, type(exc).__name__, exc)
            us = time.ticks_diff(time.ticks_us(), t0)
            b = 0
            while us >> b:
                b += 1
            hist[min(b, 31)] += 1
            if us > max_us:
                max_us, slowest = us, count
            count += 1
            if count % 64 == 0:
                gc.collect()
    gc.collect()
    print("DONE target=%s inputs=%d values=%d errors=%d crashes=%d max_us=%d slowest=%d "
          "heap_free=%d hist=%s" % (name, count, values, errors, crashes, max_us, slowest,
                                    gc.mem_free(), ",".join(str(h) for h in hist)))


main()
