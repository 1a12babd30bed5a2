# Runs under MicroPython: framing and CBOR cost per message, in microseconds.
# Prints one line of key=value pairs for benchmarks/__main__.py.
import time
import gc
import cbor
from framing import FrameDecoder, encode_frame
from link import Link


def per_call_us(fn, n):
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    return time.ticks_diff(time.ticks_us(), t0) / n


message = {1: 1, 2: 1795305600, 3: "0.1.0", 4: 480,
           5: {1: 123456, 2: 99, 3: "idle", 4: b"\x00" * 16}}
body = cbor.encode(message)
payload = bytes((1, 4, 7, 0)) + bytes(range(252))
frame = encode_frame(payload)
decoder = FrameDecoder()
def sink(payload):
    pass


n = 200
gc.collect()
print("frame_bytes=%d body_bytes=%d" % (len(frame), len(body)),
      "encode_frame_us=%d" % per_call_us(lambda: encode_frame(payload), n),
      "decode_frame_us=%d" % per_call_us(lambda: decoder.feed(frame, len(frame), sink), n),
      "cbor_encode_us=%d" % per_call_us(lambda: cbor.encode(message), n),
      "cbor_decode_us=%d" % per_call_us(lambda: cbor.decode(body), n))
