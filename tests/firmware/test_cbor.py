# Board CBOR codec: RFC 8949 Appendix A examples within the profile, and every refusal.
# Plain functions, no pytest: they also run under MicroPython (test_under_micropython.py).
import cbor
from cbor import CBORError, decode, encode
from fwtest import raises


def h(s):
    return bytes.fromhex(s.replace(" ", ""))


def same(a, b):
    # == alone would let True pass for 1 and [x] for (x,)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())
    return a == b


def refused(hexdata, word, **limits):
    exc = raises(CBORError, decode, h(hexdata), **limits)
    assert word in str(exc), "%s: %r lacks %r" % (hexdata, str(exc), word)
    return exc


def check_both(hexdata, value):
    data = h(hexdata)
    assert encode(value) == data, "encode %r gave %s, RFC says %s" % (value, encode(value).hex(), hexdata)
    assert same(decode(data), value), "decode %s gave %r" % (hexdata, decode(data))


# RFC 8949 Appendix A, the examples inside the profile (hex as printed there)

def test_rfc_unsigned_integers():
    for hexdata, value in (
            ("00", 0), ("01", 1), ("0a", 10), ("17", 23), ("1818", 24), ("1819", 25),
            ("1864", 100), ("1903e8", 1000), ("1a000f4240", 1000000),
            ("1b000000e8d4a51000", 1000000000000),
            ("1bffffffffffffffff", 18446744073709551615)):
        check_both(hexdata, value)


def test_rfc_negative_integers():
    for hexdata, value in (
            ("20", -1), ("29", -10), ("3863", -100), ("3903e7", -1000),
            ("3bffffffffffffffff", -18446744073709551616)):
        check_both(hexdata, value)


def test_rfc_simple_values():
    check_both("f4", False)
    check_both("f5", True)
    check_both("f6", None)


def test_rfc_byte_strings():
    check_both("40", b"")
    check_both("4401020304", b"\x01\x02\x03\x04")


def test_rfc_text_strings():
    for hexdata, value in (
            ("60", ""), ("6161", "a"), ("6449455446", "IETF"), ("62225c", "\"\\"),
            ("62c3bc", "\u00fc"), ("63e6b0b4", "\u6c34"),
            ("64f0908591", "\U00010151")):  # RFC writes it as "\ud800\udd51"
        check_both(hexdata, value)


def test_rfc_arrays():
    check_both("80", [])
    check_both("83010203", [1, 2, 3])
    check_both("8301820203820405", [1, [2, 3], [4, 5]])
    check_both("98190102030405060708090a0b0c0d0e0f101112131415161718181819",
               list(range(1, 26)))


def test_rfc_maps():
    check_both("a0", {})
    check_both("a201020304", {1: 2, 3: 4})
    check_both("a26161016162820203", {"a": 1, "b": [2, 3]})
    check_both("826161a161626163", ["a", {"b": "c"}])
    check_both("a56161614161626142616361436164614461656145",
               {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"})


# Encoding rules beyond the appendix

def test_shortest_form_boundaries():
    for value, hexdata in (
            (23, "17"), (24, "1818"), (255, "18ff"), (256, "190100"), (65535, "19ffff"),
            (65536, "1a00010000"), (4294967295, "1affffffff"),
            (4294967296, "1b0000000100000000"),
            (-24, "37"), (-25, "3818"), (-256, "38ff"), (-257, "390100")):
        check_both(hexdata, value)
    # lengths follow the same rule
    assert encode(b"x" * 23)[:1] == h("57")
    assert encode(b"x" * 24)[:2] == h("5818")
    assert encode("y" * 256)[:3] == h("790100")
    assert encode([0] * 24)[:2] == h("9818")


def test_map_keys_sorted_bytewise_rfc_4_2_1():
    # RFC 8949 4.2.1's own example order (array keys left out: not in the profile)
    value = {False: 0, "aa": 0, "z": 0, -1: 0, 100: 0, 10: 0}
    data = encode(value)
    assert data == h("a6 0a00 186400 2000 617a00 62616100 f400"), data.hex()
    assert same(decode(data), value)
    # bytewise, not length-first (4.2.3): 256 (0x19...) sorts before "a" (0x61...)
    assert encode({"a": 1, 256: 2}) == h("a2 190100 02 6161 01")


def test_encode_tuple_bytearray_memoryview():
    assert encode((1, 2)) == h("820102")
    assert encode(bytearray(b"\x01\x02")) == h("420102")
    assert encode(memoryview(b"abc")[1:]) == h("426263")


def test_encode_refuses_out_of_profile():
    for value, word in ((1.5, "float"), (2 ** 64, "int range"), (-2 ** 64 - 1, "int range"),
                        (object(), "object"), ({1: 2.0}, "float"), ([1, [None, 0.0]], "float")):
        exc = raises(CBORError, encode, value)
        assert word in str(exc), str(exc)
    assert "array" in str(raises(CBORError, encode, {(1, 2): 3}))


def test_encode_refuses_runaway_nesting():
    loop = []
    loop.append(loop)
    assert "nesting" in str(raises(CBORError, encode, loop))


def test_cbor_error_is_value_error():
    assert issubclass(CBORError, ValueError)
    assert cbor.CBORError is CBORError


def test_decode_accepts_bytearray_and_memoryview():
    assert decode(bytearray(h("820102"))) == [1, 2]
    assert decode(memoryview(h("00820102"))[1:]) == [1, 2]
    assert "bytes-like" in str(raises(TypeError, decode, "00"))


def test_bytearray_reusable_after_refusal():
    buf = bytearray(h("8201"))
    try:
        decode(buf)
    except CBORError:
        buf.extend(b"\x02")  # CPython refuses a resize while a buffer export is open
    assert decode(buf) == [1, 2]


# Decoder refusals, one rule at a time

def test_refuses_empty_input():
    refused("", "empty")


def test_refuses_truncated_input():
    for hexdata in ("18", "1901", "1a000102", "1b00000001000000", "3b", "5a0000",
                    "821818", "a1 1818", "a1 0118", "82 00 5901"):
        refused(hexdata, "truncated")


def test_refuses_declared_length_beyond_input():
    refused("44 010203", "truncated")  # 4 declared, 3 present
    refused("6261", "truncated")
    refused("7818 6162", "truncated")
    refused("83 0102", "truncated")
    refused("a2 0102", "truncated")


def test_refuses_huge_declared_lengths_without_allocating():
    # 2**64-1 bytes/items declared: refused from the header alone, no MemoryError
    for hexdata, word in (("5bffffffffffffffff", "truncated"), ("7bffffffffffffffff", "truncated"),
                          ("9bffffffffffffffff", "truncated"), ("bbffffffffffffffff", "truncated"),
                          ("5a7fffffff00", "truncated"), ("9a7fffffff00", "truncated"),
                          ("bb7fffffffffffffff00", "truncated")):
        refused(hexdata, word)


def test_refuses_deep_nesting():
    assert decode(h("81" * 8 + "00")) == [[[[[[[[0]]]]]]]]
    refused("81" * 9 + "00", "nesting")
    refused("a1 01" * 9 + "00", "nesting")
    refused("8100", "nesting", max_depth=0)
    assert decode(h("00"), max_depth=0) == 0
    # far deeper than any stack: refused at level 9, no RecursionError
    deep = bytearray(5000)  # built in place: a 64 KiB heap has no room for copies
    for i in range(4999):
        deep[i] = 0x81
    exc = raises(CBORError, decode, deep)
    assert "nesting" in str(exc)


def test_refuses_too_many_items():
    ok = h("98ff") + bytes(255)  # array + 255 elements = 256 items
    assert decode(ok) == [0] * 255
    refused("990100" + "00" * 256, "item count")  # 257 items
    refused("83 010203", "item count", max_items=3)
    assert decode(h("83 010203"), max_items=4) == [1, 2, 3]
    refused("82 8101 8102", "item count", max_items=4)  # counted across nesting
    refused("a2 0102 0304", "item count", max_items=4)  # map entries count twice


def test_refuses_floats():
    # RFC 8949 Appendix A float examples: 0.0 (half), 100000.0 (single), 1.1 (double),
    # Infinity (half), and its 1.0 (half) inside an array
    for hexdata in ("f90000", "fa47c35000", "fb3ff199999999999a", "f97c00", "82 01 f93c00"):
        refused(hexdata, "float")


def test_refuses_tags():
    # RFC 8949 Appendix A: tag 0 date string, tag 1 epoch, tag 2 bignum, tag 24
    for hexdata in ("c074323031332d30332d32315432303a30343a30305a", "c11a514b67b0",
                    "c249010000000000000000", "d818456449455446", "d8 18 40"):
        refused(hexdata, "tag")


def test_refuses_other_simple_values():
    # undefined, simple(16), simple(24), simple(255) (RFC 8949 Appendix A)
    for hexdata in ("f7", "f0", "f818", "f8ff", "e0"):
        refused(hexdata, "simple")


def test_refuses_indefinite_lengths():
    # RFC 8949 Appendix A indefinite-length examples
    for hexdata in ("5f42010243030405ff", "7f657374726561646d696e67ff", "9fff",
                    "9f018202039f0405ffff", "83018202039f0405ff",
                    "bf61610161629f0203ffff", "826161bf61626163ff", "1f"):
        refused(hexdata, "indefinite")
    refused("ff", "indefinite")


def test_refuses_reserved_additional_info():
    for hexdata in ("1c", "1d", "1e", "3c", "5c", "7d", "9e", "bc", "dc", "fc", "fd", "fe"):
        refused(hexdata, "reserved")


def test_refuses_invalid_utf8():
    for hexdata in ("61ff", "6180", "61c3", "62c080",  # stray continuation, cut, overlong
                    "63e08080", "63eda080",  # overlong 3-byte, UTF-16 surrogate
                    "64f4908080", "64f5808080",  # above U+10FFFF
                    "63e6b061", "62 61c3"):
        refused(hexdata, "UTF-8")
    # the same bytes are fine as a byte string
    assert decode(h("42c080")) == b"\xc0\x80"


def test_refuses_non_shortest_forms():
    for hexdata in ("1800", "1817", "190000", "1900ff", "1a0000ffff", "1b00000000ffffffff",
                    "3800", "3817", "3900ff", "1a00000000",
                    "5800", "5801 61", "7801 61", "790001 61", "9800", "9801 00",
                    "b800", "b801 0000", "f8 14"):
        word = "simple" if hexdata.startswith("f8") else "shortest"
        refused(hexdata, word)
    refused("a1 1800 00", "shortest")  # inside a map key too


def test_refuses_unsorted_or_duplicate_map_keys():
    refused("a2 0304 0102", "order")  # {3:4, 1:2}
    refused("a2 0102 0103", "order")  # duplicate key 1
    refused("a2 6162 00 6161 00", "order")  # "b" before "a"
    refused("a2 2000 0a00", "order")  # -1 before 10
    # length-first (RFC 7049 canonical / RFC 8949 4.2.3) order is not our order
    refused("a2 6161 01 190100 02", "order")
    assert decode(h("a2 190100 02 6161 01")) == {256: 2, "a": 1}


def test_refuses_keys_equal_in_python():
    # 1 and true are distinct CBOR keys but one Python dict key
    refused("a2 01 00 f5 00", "key clash")
    refused("a2 00 00 f4 00", "key clash")


def test_refuses_container_map_keys():
    refused("a1 80 00", "map key")
    refused("a1 a0 00", "map key")


def test_refuses_trailing_bytes():
    refused("0000", "trailing")
    refused("820102 ff", "trailing")
    refused("a0 a0", "trailing")
