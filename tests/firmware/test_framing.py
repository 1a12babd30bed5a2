# Framing: COBS + CRC-32 + 0x00 delimiter, and resynchronisation after noise.
from framing import (FrameDecoder, FrameError, encode_frame, cobs_encode, cobs_decode_into,
                     MAX_PAYLOAD, MAX_ENCODED)
from fwtest import raises


def decode_all(data, decoder=None):
    decoder = decoder or FrameDecoder()
    out = []
    decoder.feed(data, len(data), out.append)
    return out


def cobs_roundtrip(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    buf = bytearray(enc)
    n = cobs_decode_into(buf, len(buf))
    return bytes(buf[:n])


def test_cobs_known_vectors():
    # the "Encoding examples" of Wikipedia's "Consistent Overhead Byte Stuffing" page,
    # without the 00 delimiter that encode_frame adds; b"" -> 01 (a code byte and no data)
    # follows from the algorithm (Cheshire and Baker, IEEE/ACM Trans. Networking, 1999)
    assert cobs_encode(b"") == b"\x01"
    assert cobs_encode(b"\x00") == b"\x01\x01"
    assert cobs_encode(b"\x00\x00") == b"\x01\x01\x01"
    assert cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert cobs_encode(b"\x11\x22\x33\x44") == b"\x05\x11\x22\x33\x44"
    assert cobs_encode(b"\x11\x00\x00\x00") == b"\x02\x11\x01\x01\x01"


def test_cobs_roundtrip_block_boundaries():
    for size in (0, 1, 253, 254, 255, 256, 300, 508, 509):
        data = bytes((i % 255) + 1 for i in range(size))
        assert cobs_roundtrip(data) == data
        with_zeros = bytes(i % 7 for i in range(size))
        assert cobs_roundtrip(with_zeros) == with_zeros


def test_frame_roundtrip():
    payloads = [b"\x01", b"\x00\x00\x00", bytes(range(256)), b"hello"]
    wire = b"".join(encode_frame(p) for p in payloads)
    assert decode_all(wire) == payloads


def test_frame_split_byte_by_byte():
    wire = encode_frame(b"\x01\x02\x00\x03") + encode_frame(b"x" * 200)
    decoder = FrameDecoder()
    out = []
    for b in wire:
        decoder.feed(bytes((b,)), 1, out.append)
    assert out == [b"\x01\x02\x00\x03", b"x" * 200]


def test_crc_error_dropped_and_next_frame_survives():
    good = encode_frame(b"second")
    bad = bytearray(encode_frame(b"first"))
    bad[2] ^= 0x10
    decoder = FrameDecoder()
    assert decode_all(bytes(bad) + good, decoder) == [b"second"]
    assert decoder.crc_errors == 1


def test_garbage_before_between_and_after():
    noise = b"\xff\x13\x00\x00\x7e\x01\x02"
    wire = noise + encode_frame(b"a") + noise + encode_frame(b"b") + noise
    decoder = FrameDecoder()
    assert decode_all(wire, decoder) == [b"a", b"b"]


def test_oversize_frame_dropped_then_resync():
    decoder = FrameDecoder()
    wire = b"\x05" * (MAX_ENCODED + 50) + b"\x00" + encode_frame(b"ok")
    assert decode_all(wire, decoder) == [b"ok"]
    assert decoder.oversize == 1


def test_truncated_frame_then_good_one():
    partial = encode_frame(b"lost frame")[:6]
    decoder = FrameDecoder()
    assert decode_all(partial + encode_frame(b"kept"), decoder) == [b"kept"]


def test_payload_limit():
    encode_frame(b"x" * MAX_PAYLOAD)
    raises(FrameError, encode_frame, b"x" * (MAX_PAYLOAD + 1))


def test_max_frame_fits_decoder():
    wire = encode_frame(bytes(MAX_PAYLOAD))
    assert len(wire) - 2 <= MAX_ENCODED
    assert decode_all(wire) == [bytes(MAX_PAYLOAD)]
