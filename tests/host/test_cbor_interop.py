"""The board's CBOR codec (firmware/cbor.py) against the host's cbor2, byte for byte.

cbor2 6's canonical=True sorts map keys length-first (RFC 7049 section 3.9, kept as
RFC 8949 section 4.2.3), while our profile is RFC 8949 section 4.2.1 (bytewise). The
two orders agree whenever all keys of a map share one major type, which is what the
protocol's maps use (small unsigned integer keys). So:
- on such values the board must equal cbor2.dumps(obj, canonical=True) exactly;
- on any profile value it must equal `core_deterministic(obj)`: cbor2 in insertion-order
  mode, fed dicts pre-sorted bytewise by cbor2's own encoding of each key;
- where cbor2's canonical bytes differ from 4.2.1, the board's decoder refuses them.
"""
import random
from datetime import timezone
from pathlib import Path

import cbor  # the board's codec, from firmware/
import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.micropython import run_micropython
from posbridge.link import cbor_profile

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"

U64 = 2 ** 64
BIG_LIMITS = dict(max_depth=8, max_items=100_000)  # property tests check codec, not limits
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_firmware_codec_is_the_one_under_test():
    assert Path(cbor.__file__).resolve() == FIRMWARE / "cbor.py"


# ---- reference encodings and helpers --------------------------------------

def core_deterministic(obj):
    """RFC 8949 4.2.1 bytes from the host's profile encoder (cbor2 underneath)."""
    return cbor_profile.encode(obj)


def same(a, b):
    """Equality that also checks types (True is not 1, a tuple is not a list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        typed_keys = {(type(k), k) for k in b}
        return len(a) == len(b) and all(
            (type(k), k) in typed_keys and same(v, b[k]) for k, v in a.items())
    return a == b


def count_items(v):
    if isinstance(v, list):
        return 1 + sum(count_items(x) for x in v)
    if isinstance(v, dict):
        return 1 + sum(count_items(k) + count_items(x) for k, x in v.items())
    return 1


# ---- hypothesis strategies over the profile --------------------------------

ints = st.integers(min_value=-U64, max_value=U64 - 1)
edge_ints = st.sampled_from([0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32,
                             U64 - 1, -1, -24, -25, -256, -257, -65537, -2 ** 32 - 1, -U64])
texts = st.text(max_size=40)  # hypothesis leaves out lone surrogates: valid UTF-8 only
scalars = st.one_of(ints, edge_ints, st.binary(max_size=300), texts,
                    st.booleans(), st.none())
mixed_keys = st.one_of(ints, edge_ints, texts, st.binary(max_size=8))
# keys of a single major type per map: length-first and bytewise orders coincide
same_type_keys = st.sampled_from([
    st.integers(0, U64 - 1), st.integers(0, 30), st.integers(-U64, -1), texts,
    st.binary(max_size=8)])


def nested(key_choice, depth=4):
    """Profile values nested up to `depth` containers deep."""
    if depth == 0:
        return scalars
    inner = nested(key_choice, depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=4),
        key_choice.flatmap(lambda keys: st.dictionaries(keys, inner, max_size=4)))


values = nested(st.just(mixed_keys))
same_type_key_values = nested(same_type_keys)


# ---- encode: board vs cbor2 ------------------------------------------------

@SETTINGS
@given(same_type_key_values)
def test_encode_equals_cbor2_canonical(value):
    assert cbor.encode(value) == cbor2.dumps(value, canonical=True)


@SETTINGS
@given(values)
@example({"a": 1, 256: 2})
@example({-1: 0, 100: 0, 10: 0, "z": 0, "aa": 0, False: 0})
def test_encode_equals_core_deterministic(value):
    assert cbor.encode(value) == core_deterministic(value)


@SETTINGS
@given(values)
def test_cbor2_reads_back_board_encoding(value):
    assert same(cbor2.loads(cbor.encode(value)), value)


# ---- decode: cbor2 bytes into the board --------------------------------------

@SETTINGS
@given(same_type_key_values)
def test_board_decodes_cbor2_canonical(value):
    data = cbor2.dumps(value, canonical=True)
    decoded = cbor.decode(data, **BIG_LIMITS)
    assert same(decoded, value)
    assert cbor.encode(decoded) == data


@SETTINGS
@given(values)
def test_board_decodes_core_deterministic(value):
    data = core_deterministic(value)
    assert same(cbor.decode(data, **BIG_LIMITS), value)


@pytest.mark.parametrize("value,ours", [
    ({"a": 1, 256: 2}, "a219010002616101"),
    ({-1: 0, 100: 0}, "a21864002000"),
    ({b"": 0, 24: 0}, "a21818004000"),
])
def test_mixed_key_types_follow_rfc8949_not_length_first(value, ours):
    """cbor2 canonical (length-first) and RFC 8949 4.2.1 part ways here; the board
    keeps 4.2.1 and refuses any other order, so a MAC over the bytes stays unique."""
    assert cbor.encode(value).hex() == ours
    assert core_deterministic(value).hex() == ours
    theirs = cbor2.dumps(value, canonical=True)
    if theirs.hex() != ours:  # cbor2 6.2 sorts length-first
        with pytest.raises(cbor.CBORError, match="order"):
            cbor.decode(theirs)


@SETTINGS
@given(st.one_of(st.floats(), st.datetimes(timezones=st.just(timezone.utc)), st.decimals(allow_nan=False),
                 st.integers(min_value=U64), st.integers(max_value=-U64 - 1),
                 st.lists(st.floats(), min_size=1, max_size=3)))
def test_board_refuses_what_cbor2_adds_beyond_the_profile(value):
    # floats, tags (datetime, decimal, bignum): refused both ways
    with pytest.raises(cbor.CBORError):
        cbor.decode(cbor2.dumps(value, canonical=True))
    with pytest.raises(cbor.CBORError):
        cbor.encode(value)


def _mutations(draw_data):
    data, pos, byte = draw_data
    if not data:
        return data
    b = bytearray(data)
    b[pos % len(b)] = byte
    return bytes(b)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(
    st.binary(max_size=64),
    st.tuples(values.map(core_deterministic), st.integers(0, 1000), st.integers(0, 255))
    .map(_mutations),
    values.map(lambda v: cbor2.dumps(v, canonical=True))))
def test_decoder_accepts_only_deterministic_profile_bytes(data):
    """Arbitrary bytes: either CBORError, or a value whose board encoding is exactly
    the input and which cbor2 reads the same way. Any other exception is a bug."""
    try:
        value = cbor.decode(data, **BIG_LIMITS)
    except cbor.CBORError:
        return
    assert cbor.encode(value) == data
    assert same(cbor2.loads(data), value)


# ---- one MicroPython process, ~300 values ----------------------------------

ALPHABET = "aZ09 \"\\\u00e9\u00fc\u20ac\u6c34\U00010151\U0001f600\x00\x7f"


def random_value(rng, depth):
    kind = rng.randrange(9 if depth else 6)
    if kind == 0:
        return rng.randrange(-30, 31)
    if kind == 1:
        return rng.choice([23, 24, 255, 256, 65535, 65536, 2 ** 32, U64 - 1, -24, -25,
                           -257, -2 ** 32 - 1, -U64, rng.randrange(-U64, U64)])
    if kind == 2:
        n = rng.choice([0, 1, 23, 24, rng.randrange(40), 255, 256])
        return bytes(rng.randrange(256) for _ in range(n))
    if kind == 3:
        n = rng.choice([0, 1, 5, 23, 24, rng.randrange(30)])
        if rng.random() < 0.5:
            return "".join(rng.choice(ALPHABET) for _ in range(n))
        # any scalar value of Unicode (no surrogates)
        return "".join(chr(rng.choice([rng.randrange(0xD800), rng.randrange(0xE000, 0x110000)]))
                       for _ in range(n))
    if kind == 4:
        return rng.choice([True, False, None])
    if kind == 5:
        return rng.randrange(-2 ** 40, 2 ** 40)
    if kind == 6:
        return [random_value(rng, depth - 1) for _ in range(rng.randrange(6))]
    # a map with one kind of key, as the protocol's maps have
    key = rng.choice([
        lambda: rng.randrange(24),                 # the protocol's small keys
        lambda: rng.randrange(U64),
        lambda: -1 - rng.randrange(300),
        lambda: "".join(rng.choice("abcxyz") for _ in range(rng.randrange(4))),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(3)))])
    return {key(): random_value(rng, depth - 1) for _ in range(rng.randrange(6))}


def random_values(count=300, seed=8949):
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        v = random_value(rng, 4)
        if count_items(v) <= 256:  # inside the board's default decode limits
            out.append(v)
    return out


MP_SCRIPT = """\
import sys, binascii, gc, cbor
n = 0
with open(sys.argv[1]) as f:
    for line in f:
        obj = cbor.decode(binascii.unhexlify(line.strip()))
        print(binascii.hexlify(cbor.encode(obj)).decode())
        obj = None
        n += 1
gc.collect()
print("DONE", n, gc.mem_free())
"""


def test_micropython_board_round_trips_cbor2_canonical(tmp_path):
    vals = random_values()
    encoded = [cbor2.dumps(v, canonical=True) for v in vals]
    # one kind of key per map, so cbor2's canonical order is also RFC 8949 4.2.1's
    assert encoded == [core_deterministic(v) for v in vals]
    (tmp_path / "values.hex").write_text("".join(e.hex() + "\n" for e in encoded))
    script = tmp_path / "roundtrip.py"
    script.write_text(MP_SCRIPT)

    result = run_micropython([str(script), str(tmp_path / "values.hex")])

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("DONE %d " % len(vals)), lines[-3:]
    board = [bytes.fromhex(line) for line in lines[:-1]]
    assert len(board) == len(encoded)
    for value, ref, got in zip(vals, encoded, board):
        assert got == ref, "value %r: board %s, cbor2 %s" % (value, got.hex(), ref.hex())
        assert same(cbor2.loads(got), value)


@pytest.mark.parametrize("data,why", [
    (bytes.fromhex("a2616101190100 02".replace(" ", "")), "not in deterministic"),  # {"a":1, 256:2}
    (bytes.fromhex("1817"), "not in deterministic"),          # 23 in two bytes
    (bytes.fromhex("f93c00"), "not in the profile"),          # half float 1.0, RFC 8949 App. A
    (bytes.fromhex("c11a514b67b0"), "not in the profile"),    # tag 1 (epoch time), App. A
    (bytes.fromhex("0102"), "trailing"),
    (bytes.fromhex("5b"), "not CBOR"),
])
def test_host_profile_decoder_refuses(data, why):
    with pytest.raises(cbor_profile.ProfileError, match=why):
        cbor_profile.decode(data)


def test_host_profile_agrees_with_board_on_mixed_keys():
    value = {"a": 1, 256: 2, -1: [b"", {"b": None, 24: True}]}
    assert cbor_profile.encode(value) == cbor.encode(value)
    assert cbor_profile.decode(cbor.encode(value)) == value
