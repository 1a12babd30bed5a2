"""Host framing (posbridge/link/framing.py, the `cobs` package) against the board's framing
(firmware/framing.py, its own COBS), byte for byte and in both directions.

docs/protocol.md, "Framing": 0x00 | COBS(payload | CRC-32 big-endian) | 0x00, payload
at most 512 bytes, at most 519 bytes between delimiters, bad frames counted and dropped.
"""
import binascii
import importlib.util
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posbridge.link import framing as host

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def _load_board_module(alias: str, filename: str):
    """The board's module under an alias, so it cannot be mistaken for posbridge.link.framing."""
    spec = importlib.util.spec_from_file_location(alias, FIRMWARE / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


board = _load_board_module("board_framing", "framing.py")

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
payloads = st.binary(min_size=1, max_size=host.MAX_PAYLOAD)  # empty ones are refused
nonempty_payloads = payloads


# ---- helpers ------------------------------------------------------------------

def host_split(chunks):
    """Payloads and error counts from the host's splitter, fed chunk by chunk."""
    splitter = host.FrameSplitter()
    out = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    return out, dict(splitter.errors)


def board_split(chunks):
    """The same from the board's decoder, with its counters under the host's names."""
    decoder = board.FrameDecoder()
    out = []
    for chunk in chunks:
        decoder.feed(chunk, len(chunk), out.append)
    return out, {"crc": decoder.crc_errors, "framing": decoder.cobs_errors,
                 "oversize": decoder.oversize}


def cut(data: bytes, points):
    """data split at the given offsets (sorted, duplicates allowed)."""
    edges = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


def ends_in_full_cobs_block(payload: bytes) -> bool:
    """True when COBS's last block is a full run of 254 non-zero bytes: the one input
    where a COBS encoder may or may not write a final empty block; both sides do not."""
    data = payload + binascii.crc32(payload).to_bytes(4, "big")
    return len(data) - 1 - data.rfind(0) == 254


def no_errors():
    return {"crc": 0, "framing": 0, "oversize": 0}


def payload_with(seed_range, length, predicate, shape=lambda p: p):
    """A deterministic pseudo-random non-zero payload, shaped, for which predicate holds."""
    for seed in seed_range:
        rng = random.Random(seed)
        candidate = shape(bytes(rng.randrange(1, 256) for _ in range(length)))
        if predicate(candidate):
            return candidate
    raise AssertionError("no payload found")  # pragma: no cover


def zero_at_5(payload):
    return payload[:5] + b"\x00" + payload[6:]


def crc_has_no_zero(payload):
    return all(binascii.crc32(payload).to_bytes(4, "big"))


# ---- constants and known frames ------------------------------------------------

def test_board_module_is_the_firmware_file_not_the_host_one():
    assert Path(board.__file__).resolve() == FIRMWARE / "framing.py"
    assert board is not host and board.FrameDecoder is not host.FrameSplitter


@pytest.mark.parametrize("name", ["MAX_PAYLOAD", "CRC_SIZE", "MAX_ENCODED"])
def test_size_limits_are_equal_on_both_sides(name):
    assert getattr(host, name) == getattr(board, name)


def test_size_limits_are_the_documented_ones():
    assert (host.MAX_PAYLOAD, host.CRC_SIZE, host.MAX_ENCODED) == (512, 4, 519)


# (payload, whole frame on the wire); the CRC-32 check value of "123456789" is 0xCBF43926
# (CRC RevEng catalogue, CRC-32/ISO-HDLC "check")
KNOWN_FRAMES = [
    (b"123456789", bytes.fromhex("00 0e 313233343536373839 cbf43926 00")),
    (b"\x00", bytes.fromhex("00 01 05 d2 02 ef 8d 00")),
    (b"\x01\x00\x07\x00", bytes.fromhex("00 02 01 02 07 05 d6 b9 2e be 00")),
]


@pytest.mark.parametrize("payload, wire", KNOWN_FRAMES, ids=["check-value", "one-zero", "ack"])
def test_known_frames_are_encoded_the_same_by_both_sides(payload, wire):
    assert host.encode_frame(payload) == wire
    assert board.encode_frame(payload) == wire


@pytest.mark.parametrize("side", [host, board], ids=["host", "board"])
def test_payload_over_512_bytes_is_refused_by_the_encoder(side):
    with pytest.raises(side.FrameError, match="513 bytes exceeds 512"):
        side.encode_frame(bytes(513))


# ---- both directions, byte for byte ---------------------------------------------

@SETTINGS
@given(payloads)
def test_encoders_agree_byte_for_byte(payload):
    assert host.encode_frame(payload) == board.encode_frame(payload)


@SETTINGS
@given(payloads)
def test_encoded_frame_fits_the_bound_and_has_zeros_only_at_its_ends(payload):
    for side in (host, board):
        frame = side.encode_frame(payload)
        assert frame[0] == 0 and frame[-1] == 0
        assert 0 not in frame[1:-1]
        assert len(frame) - 2 <= host.MAX_ENCODED


@SETTINGS
@given(nonempty_payloads)
def test_board_decodes_what_the_host_encodes(payload):
    out, errors = board_split([host.encode_frame(payload)])
    assert out == [payload]
    assert errors == no_errors()


@SETTINGS
@given(nonempty_payloads)
def test_host_decodes_what_the_board_encodes(payload):
    frame = board.encode_frame(payload)
    assert host.decode_frame(frame[1:-1]) == payload
    out, errors = host_split([frame])
    assert out == [payload]
    assert errors == no_errors()


@pytest.mark.parametrize("payload", [
    # 250 non-zero bytes whose CRC has no zero byte: payload + CRC is one 254-byte run
    payload_with(range(1000), 250, crc_has_no_zero),
    # 256 bytes: a zero at index 5, then 250 non-zero bytes and a zero-free CRC
    payload_with(range(1000), 256, crc_has_no_zero, zero_at_5),
], ids=["250-non-zero", "zero-then-254-run"])
def test_encoders_agree_when_last_block_is_full(payload):
    assert ends_in_full_cobs_block(payload)
    assert host.encode_frame(payload) == board.encode_frame(payload), (
        f"host {len(host.encode_frame(payload))} bytes, "
        f"board {len(board.encode_frame(payload))} bytes")


def test_frames_whose_last_block_is_full_still_cross_in_both_directions():
    payload = payload_with(range(1000), 250, crc_has_no_zero)
    assert host.decode_frame(board.encode_frame(payload)[1:-1]) == payload
    assert board_split([host.encode_frame(payload)])[0] == [payload]


@pytest.mark.parametrize("side", [host, board], ids=["host", "board"])
def test_empty_payload_is_refused(side):
    # no decoder could take it back (a frame is more than its CRC), and the link never
    # sends one: every payload starts with its 4-byte header
    with pytest.raises(side.FrameError, match="empty payload"):
        side.encode_frame(b"")


# ---- the splitter: garbage, resynchronisation, error counts ----------------------

GOOD = b"\x01\x04\x07\x00hello\x00"
GOOD2 = bytes(range(1, 40))
FLIPPED = bytearray(host.encode_frame(b"A" * 8))
FLIPPED[3] ^= 0x02  # a data byte, still non-zero: only the CRC can tell

NOISE = [
    # name, what comes before two good frames, the errors it must cost
    ("noise-without-delimiter", b"\x13\x37\xfe", {"framing": 1}),
    ("noise-with-delimiters", b"\x00\x05\x00\x00\x03\x00", {"framing": 2}),
    ("lone-delimiters", b"\x00\x00\x00", {}),
    ("too-short-for-a-crc", b"\x00\x01\x01\x00", {"framing": 1}),
    ("flipped-bit", bytes(FLIPPED), {"crc": 1}),
    ("truncated-frame", host.encode_frame(b"A" * 20)[:8], {"framing": 1}),
    ("oversize-junk", b"\x00" + b"\x01" * 600, {"oversize": 1}),
    ("oversize-junk-at-stream-start", b"\x01" * 600, {"oversize": 1}),
    ("520-byte-junk", b"\x00" + b"\x01" * 520, {"oversize": 1}),
    ("519-byte-junk-is-decoded-not-dropped", b"\x00" + b"\x01" * 519, {"crc": 1}),
]


@pytest.mark.parametrize("noise, expected", [(n, e) for _, n, e in NOISE],
                         ids=[name for name, _, _ in NOISE])
def test_splitter_resyncs_after_noise_and_counts_it(noise, expected):
    stream = noise + host.encode_frame(GOOD) + host.encode_frame(GOOD2)
    want_errors = {**no_errors(), **expected}
    for split in (host_split, board_split):
        out, errors = split([stream])
        assert out == [GOOD, GOOD2], f"{split.__name__}: {out!r}"
        assert errors == want_errors, f"{split.__name__}: {errors}"


@pytest.mark.parametrize("noise, expected", [(n, e) for _, n, e in NOISE],
                         ids=[name for name, _, _ in NOISE])
def test_splitter_gives_the_same_result_split_at_every_byte_boundary(noise, expected):
    stream = noise + host.encode_frame(GOOD) + host.encode_frame(GOOD2)
    want = ([GOOD, GOOD2], {**no_errors(), **expected})
    for i in range(len(stream) + 1):
        chunks = [stream[:i], stream[i:]]
        assert host_split(chunks) == want, f"host, split at byte {i}"
        assert board_split(chunks) == want, f"board, split at byte {i}"


@pytest.mark.parametrize("noise, expected", [(n, e) for _, n, e in NOISE],
                         ids=[name for name, _, _ in NOISE])
def test_splitter_gives_the_same_result_one_byte_at_a_time(noise, expected):
    stream = noise + host.encode_frame(GOOD) + host.encode_frame(GOOD2)
    chunks = [stream[i:i + 1] for i in range(len(stream))]
    want = ([GOOD, GOOD2], {**no_errors(), **expected})
    assert host_split(chunks) == want
    assert board_split(chunks) == want


def test_largest_legal_frame_is_delivered_and_one_byte_more_is_dropped():
    payload = payload_with(range(1000), host.MAX_PAYLOAD, crc_has_no_zero)
    frame = host.encode_frame(payload)
    assert len(frame) - 2 == host.MAX_ENCODED  # 519 bytes between the delimiters
    too_long = frame[:-1] + b"\x01" + b"\x00"  # one extra non-zero byte before the end
    for split in (host_split, board_split):
        assert split([frame]) == ([payload], no_errors())
        out, errors = split([too_long, host.encode_frame(GOOD)])
        assert out == [GOOD], split.__name__
        assert errors == {**no_errors(), "oversize": 1}, split.__name__


def test_oversize_frame_in_many_chunks_is_counted_once():
    junk = b"\x00" + b"\x07" * 1000
    chunks = [junk[i:i + 37] for i in range(0, len(junk), 37)] + [host.encode_frame(GOOD)]
    for split in (host_split, board_split):
        assert split(chunks) == ([GOOD], {**no_errors(), "oversize": 1}), split.__name__


def test_host_decode_frame_names_what_is_wrong():
    with pytest.raises(host.CRCError, match="CRC mismatch"):
        host.decode_frame(bytes(FLIPPED)[1:-1])
    with pytest.raises(host.FrameError, match="too short"):
        host.decode_frame(b"\x01\x01")
    with pytest.raises(host.FrameError, match="bad COBS"):
        host.decode_frame(b"\x09\x41")
    with pytest.raises(host.FrameError, match="exceeds 519"):
        host.decode_frame(b"\x01" * 520)


# ---- properties over streams -----------------------------------------------------

def _segment():
    good = nonempty_payloads.map(lambda p: ("frame", p))
    junk = st.binary(min_size=0, max_size=40).map(lambda b: ("junk", b))
    oversize = st.integers(263, 600).map(lambda n: ("junk", b"\x00" + b"\x5a" * n))

    def flip(args):
        payload, where, bit = args
        frame = bytearray(host.encode_frame(payload))
        frame[1 + where % (len(frame) - 2)] ^= 1 << bit
        return ("junk", bytes(frame))
    corrupted = st.tuples(nonempty_payloads, st.integers(0, 1000), st.integers(0, 7)).map(flip)
    return st.one_of(good, junk, oversize, corrupted)


@SETTINGS
@given(st.lists(_segment(), max_size=8), st.lists(st.integers(0, 10_000), max_size=12))
def test_host_and_board_agree_on_any_stream_in_any_chunks(segments, cuts):
    stream = b"".join(host.encode_frame(v) if kind == "frame" else v for kind, v in segments)
    sent = [v for kind, v in segments if kind == "frame"]
    chunks = cut(stream, cuts)
    host_out, host_errors = host_split(chunks)
    board_out, board_errors = board_split(chunks)
    # a good frame survives whatever noise comes before or after it
    assert host_out == sent
    assert board_out == sent
    assert host_errors == board_errors
    assert host_split([stream]) == (host_out, host_errors)  # chunking changes nothing


@SETTINGS
@given(st.lists(nonempty_payloads, min_size=1, max_size=5),
       st.lists(st.integers(0, 10_000), max_size=20))
def test_frames_from_either_side_split_anywhere_arrive_intact(frames, cuts):
    stream = b"".join((host if i % 2 else board).encode_frame(p) for i, p in enumerate(frames))
    for split in (host_split, board_split):
        assert split(cut(stream, cuts)) == (frames, no_errors()), split.__name__
